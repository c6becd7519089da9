"""A loopback stand-in for exactly the Hugging Face Hub HTTP routes our Hub backend calls.

The Hub cannot be reached from these machines, so `HubRegistry` is tested against this app
(served by uvicorn on 127.0.0.1, `HfApi(endpoint=...)`). It implements, as the real Hub
documents and huggingface_hub 2.4 calls them:

    POST /api/repos/create                                   create_repo
    POST /api/models/{ns}/{name}/branch/{branch}             create_branch
    POST /api/models/{ns}/{name}/preupload/{revision}        create_commit: upload modes
    POST /{ns}/{name}.git/info/lfs/objects/batch             LFS batch API (basic transfer)
    PUT  /lfs-objects/{oid}                                  LFS upload (pre-signed, no auth)
    POST /lfs-objects/{oid}/verify                           LFS verify
    POST /api/validate-yaml                                  README.md metadata check
    POST /api/models/{ns}/{name}/commit/{revision}           NDJSON commit
    GET  /api/models/{ns}/{name}/revision/{revision}         repo_info (no-op commit)
    POST /api/models/{ns}/{name}/tag/{revision}              create_tag
    GET  /{ns}/{name}/resolve/{revision}/{path}              file download (the manifest URLs)

Uploads use LFS only (HF_HUB_DISABLE_XET=1): the Xet protocol talks to a separate CAS
service that is not stood in for here. Any other route answers 404 and is recorded in
`unknown`, so a test can assert the backend called nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

LFS_SUFFIXES = (".gguf", ".bin", ".safetensors", ".pt", ".onnx")
LFS_THRESHOLD = 10 * 1024 * 1024


@dataclass
class Repo:
    """One model repo: commits as full file maps, branches and tags pointing at commits."""

    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.branches.get(revision) or self.tags.get(revision)


@dataclass
class HubState:
    """Everything the stand-in stored, for tests to inspect."""

    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _error(status: int, code: str, message: str, **extra: str) -> JSONResponse:
    return JSONResponse(
        {"error": message, **extra},
        status,
        headers={"X-Error-Code": code, "X-Error-Message": message},
    )


def create_standin(token: str) -> tuple[FastAPI, HubState]:
    """The app and its state; requests must carry `Bearer <token>` (except LFS PUT)."""
    app = FastAPI()
    state = HubState(token=token)

    @app.middleware("http")
    async def auth_and_record(request: Request, call_next: Any) -> Response:
        state.calls.append((request.method, request.url.path))
        public = request.url.path.startswith("/lfs-objects/") and request.method == "PUT"
        if not public and request.headers.get("authorization") != f"Bearer {state.token}":
            return _error(401, "Unauthorized", "invalid or missing token")
        response: Response = await call_next(request)
        if response.status_code == 404 and not response.headers.get("X-Error-Code"):
            state.unknown.append((request.method, request.url.path))
        return response

    def repo_or_404(ns: str, name: str) -> Repo | JSONResponse:
        repo = state.repos.get(f"{ns}/{name}")
        return repo if repo else _error(404, "RepoNotFound", f"repo {ns}/{name} not found")

    @app.post("/api/repos/create")
    async def create_repo(body: dict[str, Any], request: Request) -> Response:
        repo_id = f"{body['organization']}/{body['name']}"
        url = f"{str(request.base_url).rstrip('/')}/{repo_id}"
        if repo_id in state.repos:
            # The Hub's 409 carries the repo URL too; create_repo(exist_ok=True) reads it.
            return _error(409, "RepoExists", "You already created this model repo", url=url)
        repo = Repo(private=body.get("visibility") == "private")
        initial = {".gitattributes": b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"}
        oid = hashlib.sha1(json.dumps(sorted(initial)).encode()).hexdigest()
        repo.commits[oid] = initial
        repo.branches["main"] = oid
        state.repos[repo_id] = repo
        return JSONResponse({"url": url})

    @app.post("/api/models/{ns}/{name}/branch/{branch}")
    async def create_branch(ns: str, name: str, branch: str, body: dict[str, Any]) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        if branch in repo.branches:
            return _error(409, "BranchExists", f"branch {branch} already exists")
        start = repo.resolve(body.get("startingPoint") or "main")
        if start is None:
            return _error(404, "RevisionNotFound", "starting point not found")
        repo.branches[branch] = start
        return JSONResponse({})

    @app.post("/api/models/{ns}/{name}/preupload/{revision}")
    async def preupload(ns: str, name: str, revision: str, body: dict[str, Any]) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        head = repo.resolve(revision)
        if head is None:
            return _error(404, "RevisionNotFound", f"revision {revision} not found")
        tree = repo.commits[head]
        answer = []
        for item in body["files"]:
            path = item["path"]
            lfs = path.endswith(LFS_SUFFIXES) or item["size"] > LFS_THRESHOLD
            current = tree.get(path)
            oid = None
            if current is not None:
                in_lfs = path in repo.lfs_paths
                oid = hashlib.sha256(current).hexdigest() if in_lfs else git_blob_oid(current)
            mode = "lfs" if lfs else "regular"
            answer.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": answer})

    @app.post("/{ns}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch(ns: str, name: str, request: Request) -> Response:
        if f"{ns}/{name}" not in state.repos:
            return _error(404, "RepoNotFound", "repo not found")
        body = await request.json()
        base = str(request.base_url).rstrip("/")
        objects = []
        for obj in body["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in state.lfs:
                href = f"{base}/lfs-objects/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects})

    @app.put("/lfs-objects/{oid}")
    async def lfs_put(oid: str, request: Request) -> Response:
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            return _error(400, "BadOid", "uploaded content does not match its sha256 oid")
        state.lfs[oid] = data
        return Response(status_code=200)

    @app.post("/lfs-objects/{oid}/verify")
    async def lfs_verify(oid: str, body: dict[str, Any]) -> Response:
        stored = state.lfs.get(oid)
        if stored is None or len(stored) != body["size"]:
            return _error(422, "LfsVerify", "object missing or of another size")
        return JSONResponse({})

    @app.post("/api/validate-yaml")
    async def validate_yaml(body: dict[str, Any]) -> Response:
        errors = _card_errors(body["content"])
        status = 400 if errors else 200
        return JSONResponse({"errors": [{"message": e} for e in errors], "warnings": []}, status)

    @app.post("/api/models/{ns}/{name}/commit/{revision}")
    async def commit(ns: str, name: str, revision: str, request: Request) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        if revision not in repo.branches:
            return _error(404, "RevisionNotFound", f"branch {revision} not found")
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line]
        tree = dict(repo.commits[repo.branches[revision]])
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
                repo.lfs_paths.discard(value["path"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in state.lfs:
                    return _error(422, "LfsMissing", f"LFS object {value['oid']} not uploaded")
                tree[value["path"]] = state.lfs[value["oid"]]
                repo.lfs_paths.add(value["path"])
            else:
                return _error(400, "Unsupported", f"operation {line['key']} not stood in for")
        seed = repo.branches[revision] + json.dumps(lines)
        oid = hashlib.sha1(seed.encode()).hexdigest()
        repo.commits[oid] = tree
        repo.branches[revision] = oid
        base = str(request.base_url).rstrip("/")
        url = f"{base}/{ns}/{name}/commit/{oid}"
        return JSONResponse({"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})

    @app.get("/api/models/{ns}/{name}/revision/{revision}")
    async def repo_info(ns: str, name: str, revision: str) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        sha = repo.resolve(revision)
        if sha is None:
            return _error(404, "RevisionNotFound", f"revision {revision} not found")
        return JSONResponse({"id": f"{ns}/{name}", "sha": sha, "private": repo.private})

    @app.post("/api/models/{ns}/{name}/tag/{revision}")
    async def create_tag(ns: str, name: str, revision: str, body: dict[str, Any]) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        if body["tag"] in repo.tags:
            return _error(409, "TagExists", f"tag {body['tag']} already exists")
        sha = repo.resolve(revision)
        if sha is None:
            return _error(404, "RevisionNotFound", f"revision {revision} not found")
        repo.tags[body["tag"]] = sha
        return JSONResponse({})

    @app.get("/{ns}/{name}/resolve/{revision}/{path:path}")
    async def resolve(ns: str, name: str, revision: str, path: str) -> Response:
        repo = repo_or_404(ns, name)
        if isinstance(repo, Response):
            return repo
        sha = repo.resolve(revision)
        if sha is None or path not in repo.commits[sha]:
            return _error(404, "EntryNotFound", f"{path} not found at {revision}")
        return Response(repo.commits[sha][path], media_type="application/octet-stream")

    return app, state


def _card_errors(content: str) -> list[str]:
    """The Hub's metadata checks that matter to us: YAML front matter and model-index shape."""
    if not content.startswith("---\n"):
        return []
    try:
        meta = yaml.safe_load(content.split("---\n", 2)[1]) or {}
    except yaml.YAMLError as exc:
        return [f"invalid YAML: {exc}"]
    errors = []
    for model in meta.get("model-index", []) or []:
        if not model.get("name"):
            errors.append("model-index entry without name")
        for result in model.get("results", []):
            if not result.get("task", {}).get("type"):
                errors.append("model-index result without task.type")
            dataset = result.get("dataset", {})
            if not (dataset.get("name") and dataset.get("type")):
                errors.append("model-index result without dataset name and type")
            for metric in result.get("metrics", []):
                if "type" not in metric or "value" not in metric:
                    errors.append("model-index metric without type and value")
    return errors


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("Hub stand-in did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
