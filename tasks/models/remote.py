"""Remote teacher presets: a model behind an OpenAI-compatible server (vLLM, TGI, llama.cpp, HF).

They live in a TOML file (DISTILLERY_REMOTE_TEACHERS, else `<data dir>/remote_teachers.toml`)::

    [teachers.qwen-7b-endpoint]
    base_url = "https://xyz.endpoints.huggingface.cloud/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
    server = "hf_endpoint"            # vllm | tgi | llama_cpp | hf_endpoint | openai
    tokenizer = "qwen2.5-7b-instruct" # local preset with the same tokenizer (logit signals)
    api_key_env = "HF_TOKEN"          # the key's environment variable ...
    api_key_secret = "qwen-endpoint"  # ... else this Prefect Secret block

The key itself never goes in the file: a preset that holds one is refused.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from storage.layout import layout
from tasks.settings import PipelineSettings

ServerKind = Literal["vllm", "tgi", "llama_cpp", "hf_endpoint", "openai"]
SERVER_KINDS = ("vllm", "tgi", "llama_cpp", "hf_endpoint", "openai")
REMOTE_FILE_ENV = "DISTILLERY_REMOTE_TEACHERS"
FREE_TIER_TOKENS_PER_HOUR = 30_000  # the seed's free inference tier, per model


class RemotePresetError(ValueError):
    """A remote teacher file or preset that cannot be used as written."""


@dataclass(frozen=True)
class RemoteTeacher:
    """A teacher served over HTTP: where, which model, how hard we may call it."""

    name: str
    base_url: str  # up to and including /v1
    model: str  # the model name the server answers to
    server: ServerKind = "openai"
    revision: str = "remote"  # part of the cache key: change it when the served weights change
    tokenizer: str | None = None  # a local preset whose tokenizer the served model shares
    api_key_env: str | None = None
    api_key_secret: str | None = None
    tokens_per_hour: int = FREE_TIER_TOKENS_PER_HOUR
    concurrency: int = 4
    max_logprobs: int = 20  # the server's --max-logprobs (vLLM's default is 20)
    timeout_s: float = 300.0
    max_attempts: int = 6

    def __post_init__(self) -> None:
        if self.server not in SERVER_KINDS:
            raise RemotePresetError(
                f"remote teacher {self.name!r}: server must be one of {', '.join(SERVER_KINDS)}, "
                f"got {self.server!r}"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise RemotePresetError(
                f"remote teacher {self.name!r}: base_url must start with http:// or https://"
            )
        for name in ("tokens_per_hour", "concurrency", "max_logprobs", "max_attempts"):
            if int(getattr(self, name)) < 1:
                raise RemotePresetError(f"remote teacher {self.name!r}: {name} must be >= 1")

    @property
    def has_prompt_logprobs(self) -> bool:
        """Only vLLM returns top-k log-probs of prompt tokens (`prompt_logprobs`)."""
        return self.server == "vllm"

    @property
    def cache_id(self) -> str:
        """The teacher's identity in cache keys: the served model, not the URL it moved to."""
        return f"remote:{self.model}"


def remote_file() -> Path:
    """The file remote teachers are read from."""
    return PipelineSettings.read().remote_teachers or layout().remote_teachers_file()


def load_remote_teachers(path: Path | None = None) -> dict[str, RemoteTeacher]:
    """Every remote teacher in the file (none when there is no file)."""
    path = path or remote_file()
    if not path.is_file():
        if PipelineSettings.read().remote_teachers:
            raise RemotePresetError(f"{REMOTE_FILE_ENV} names {path}, which does not exist")
        return {}
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RemotePresetError(f"{path}: not valid TOML ({exc})") from None
    known = {f.name for f in fields(RemoteTeacher)} - {"name"}
    out: dict[str, RemoteTeacher] = {}
    for name, values in dict(table.get("teachers", {})).items():
        secret_like = [
            k for k in values if "key" in k and k not in ("api_key_env", "api_key_secret")
        ]
        if secret_like:
            raise RemotePresetError(
                f"{path}: remote teacher {name!r} holds {', '.join(secret_like)}; keys never go "
                "in the preset file: name an environment variable (api_key_env) or a Prefect "
                "Secret block (api_key_secret)"
            )
        unknown = sorted(set(values) - known)
        if unknown:
            raise RemotePresetError(
                f"{path}: remote teacher {name!r} has unknown fields {unknown}; known: "
                f"{', '.join(sorted(known))}"
            )
        out[name] = RemoteTeacher(name=name, **values)
    return out


def remote_teacher(name: str) -> RemoteTeacher | None:
    """The remote teacher called `name`, None when it is not a remote preset."""
    return load_remote_teachers().get(name)


def remote_teacher_names() -> list[str]:
    """Names of the remote teachers for CLI choices; none when the file cannot be read."""
    try:
        return sorted(load_remote_teachers())
    except (RemotePresetError, OSError):  # the error is raised where the teacher is used
        return []


def is_remote(name: str | None) -> bool:
    """Whether `name` is a remote teacher preset."""
    return bool(name) and remote_teacher(str(name)) is not None


def check_teacher_name(name: str) -> str:
    """`name` when it is a local or remote teacher preset; the usual unknown-preset error else."""
    if remote_teacher(name) is None:
        from tasks.models.presets import get_preset

        get_preset(name)
    return name


def api_key(teacher: RemoteTeacher) -> str | None:
    """The key from the named environment variable, else the named Prefect Secret block."""
    if teacher.api_key_env and os.environ.get(teacher.api_key_env):
        return os.environ[teacher.api_key_env]
    if teacher.api_key_secret:
        from prefect.blocks.system import Secret

        secret = Secret.load(teacher.api_key_secret)
        if not isinstance(secret, Secret):  # a coroutine: only when called inside an event loop
            raise RemotePresetError("read the teacher's key secret outside an event loop")
        return str(secret.get())
    if teacher.api_key_env:
        raise RemotePresetError(
            f"remote teacher {teacher.name!r} needs its key: set {teacher.api_key_env}"
        )
    return None  # an open server (e.g. vLLM on a private network)


def describe(teacher: RemoteTeacher) -> dict[str, Any]:
    """What a run records about the teacher (never the key)."""
    return {
        "name": teacher.name,
        "base_url": teacher.base_url,
        "model": teacher.model,
        "server": teacher.server,
        "revision": teacher.revision,
        "tokens_per_hour": teacher.tokens_per_hour,
    }
