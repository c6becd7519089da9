"""Publishing: render the model card, publish a version atomically, move channels.

The backend comes from settings (DISTILLERY_REGISTRY=local|hub, DISTILLERY_HUB_NAMESPACE, ...);
the Hub token only from HF_TOKEN or the Prefect Secret block named by
DISTILLERY_HUB_TOKEN_SECRET. Publishing is idempotent, so its Prefect tasks
(tasks.publish_tasks) retry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from storage.config import StorageSettings
from storage.db import Database, get_database
from storage.registry import (
    ChannelMove,
    FileSpec,
    Registry,
    RegistryError,
    RegistrySettings,
    VersionSpec,
    open_registry,
    rollouts,
)
from tasks.evaluate.card import model_index, render_eval_section
from tasks.evaluate.gate import GateDecision
from tasks.export.files import GGUFFile
from tasks.results import StageResult
from tasks.runtime_meta import runtime_from_files


class VersionLineage(StageResult):
    """Where a new version comes from, and what runs it: its manifest's and card's metadata."""

    base_model: str
    """Hub id of the student's base model."""
    base_revision: str | None = None
    """The base's revision (a commit, or the preset's recipe hash)."""
    teacher: str | None = None
    """The teacher it was distilled from (with its adapter, when one was used)."""
    strategy: str | None = None
    """Distillation strategy: logit, xtok or sequence."""
    snapshot_id: int | None = None
    """The dataset snapshot it was trained on."""
    snapshot_fingerprint: str | None = None
    """That snapshot's content hash."""
    training_run_id: int | None = None
    """The training run that produced it."""
    min_app_version: str | None = None
    """The oldest app that can run it."""
    license: str | None = None
    """The card's license (default apache-2.0)."""
    agent: str | None = None
    """The agent whose adapter this version is (over the shared base); None for a student."""
    runtime: dict[str, Any] = {}
    """Memory per quantization, variants and PEFT config; computed from the files when empty."""


METADATA_KEYS = set(VersionLineage.model_fields)


def hub_token(settings: RegistrySettings) -> str | None:
    """The Hub token from HF_TOKEN, else from the configured Prefect Secret block."""
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    if settings.hub_token_secret:
        from prefect.blocks.system import Secret

        secret = Secret.load(settings.hub_token_secret)
        if not isinstance(secret, Secret):  # a coroutine: only when called inside an event loop
            raise RegistryError("read the Hub token secret outside an event loop")
        return str(secret.get())
    return None


def configured_registry(database_url: str | None = None) -> Registry:
    """The registry the settings name, on the configured (or given) database."""
    settings = RegistrySettings.read()
    storage = StorageSettings.read()
    database = _database(database_url, storage)
    token = None
    if settings.registry == "hub":
        token = hub_token(settings)
        if not token:
            raise RegistryError(
                "publishing to the Hub needs a token: set HF_TOKEN or name a Prefect Secret "
                "block in DISTILLERY_HUB_TOKEN_SECRET"
            )
    return open_registry(database, settings=settings, storage=storage, token=token)


def gate_says_promote(gate: dict[str, Any] | None) -> bool:
    """Whether a gate decision dict ({"promote": bool} or {"decision": "promote"}) promotes."""
    if not gate:
        return False
    if "promote" in gate:
        return bool(gate["promote"])
    return str(gate.get("decision", "")).lower() == "promote"


def metrics_by_set(metrics: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """Metrics per eval set; a flat {metric: value} dict counts as one set, 'evaluation'."""
    if not metrics:
        return {}
    if all(isinstance(v, dict) for v in metrics.values()):
        return {str(k): dict(v) for k, v in metrics.items()}
    return {"evaluation": {k: v for k, v in metrics.items() if isinstance(v, int | float)}}


def render_model_card(
    student: str,
    *,
    version: int | None,
    metrics: dict[str, Any] | None,
    gate: dict[str, Any] | None,
    lineage: dict[str, Any],
    files: list[dict[str, Any]] | None = None,
    license: str | None = None,
    min_app_version: str | None = None,
) -> str:
    """README.md for a version: YAML front matter (model-index, base_model, tags, license),
    files, lineage table, evaluation results and the gate decision."""
    by_set = metrics_by_set(metrics)
    front: dict[str, Any] = {
        "license": license or "apache-2.0",
        "base_model": lineage.get("base_model"),
        "pipeline_tag": "text-generation",
        "library_name": "gguf",
        "tags": ["distillery", "distillation", "gguf", "on-device"],
    }
    index = model_index(student, by_set) if by_set else None
    if index and index["model-index"][0]["results"]:
        front.update(index)
    title = f"{student} v{version}" if version is not None else student
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", f"# {title}", ""]
    lines += [
        f"A small on-device model distilled from `{lineage.get('teacher') or 'n/a'}` into "
        f"`{lineage.get('base_model')}` by the distillery pipeline, for phones (GGUF).",
        "",
    ]
    if files:
        lines += [
            "## Files",
            "",
            "| file | quantization | size (bytes) | sha256 |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {f['name']} | {f.get('quantization') or ''} | {f['size']} | `{f['sha256']}` |"
            for f in files
        ]
        lines.append("")
    if min_app_version:
        lines += [f"Requires app version {min_app_version} or newer.", ""]
    lines += ["## Lineage", "", "| | |", "|---|---|"]
    lines += [f"| {key.replace('_', ' ')} | {_cell(value)} |" for key, value in lineage.items()]
    lines.append("")
    if by_set and index and index["model-index"][0]["results"]:
        lines.append(render_eval_section(student, by_set))
    lines += _gate_lines(gate)
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    return "n/a" if value in (None, "") else f"`{value}`"


def _gate_lines(gate: dict[str, Any] | None) -> list[str]:
    if not gate:
        return ["## Release gate", "", "No gate decision was recorded.", ""]
    verdict = "promote" if gate_says_promote(gate) else "reject"
    lines = ["## Release gate", "", f"**Decision:** {verdict}"]
    if gate.get("reference"):
        lines[-1] += f" (compared with {gate['reference']})"
    lines.append("")
    lines += [f"- {reason}" for reason in gate.get("reasons", [])]
    return lines + [""]


class PublishedVersion(StageResult):
    """A published version: where it lives and which files it holds."""

    backend: str
    """The registry that holds it: local or hub."""
    id: int
    """Its ModelVersion id."""
    student: str
    """The student preset."""
    version: int
    """Its version number."""
    status: str
    """Its status in the registry (published)."""
    files: list[dict[str, Any]]
    """The registry's file entries: name, path, quantization, size, sha256 (manifest JSON)."""
    manifest_path: str | None
    """The manifest phones read (local registry)."""
    hub_revision: str | None
    """The Hub commit holding it (hub registry)."""
    reused: bool
    """True when an earlier run had already published it."""

    @property
    def file_names(self) -> list[str]:
        """Names of the published files."""
        return [str(f["name"]) for f in self.files]


def _file_spec(file: FileSpec | GGUFFile | Mapping[str, Any]) -> FileSpec:
    """A file to publish from what the export stage reports (typed, or its JSON form)."""
    if isinstance(file, FileSpec):
        return file
    if isinstance(file, GGUFFile):
        return FileSpec(
            path=file.path, quantization=file.quantization, sha256=file.sha256, size=file.size
        )
    return FileSpec.from_dict(dict(file))


def _runtime_entry(spec: FileSpec) -> dict[str, Any]:
    """The fields runtime_from_files reads, from a file to publish."""
    return {
        "name": spec.file_name,
        "quantization": spec.quantization,
        "size": spec.size,
        "role": spec.role,
        "meta": spec.meta,
    }


def publish_version(
    student: str,
    files: Sequence[FileSpec | GGUFFile | Mapping[str, Any]],
    metadata: VersionLineage | Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    gate: GateDecision | Mapping[str, Any] | None = None,
    version: int | None = None,
    database_url: str | None = None,
) -> PublishedVersion:
    """Publish exported files (path, quantization, sha256, size) as a version."""
    lineage = metadata if isinstance(metadata, VersionLineage) else lineage_of(metadata)
    gate_json = gate.to_dict() if isinstance(gate, GateDecision) else dict(gate or {})
    specs = [_file_spec(f) for f in files]
    # Memory per quantization, variants and PEFT config, from the base/adapter entries' meta.
    runtime = lineage.runtime or runtime_from_files([_runtime_entry(s) for s in specs])
    spec = VersionSpec(
        student=student,
        metrics=dict(metrics or {}),
        gate=gate_json,
        **(lineage.model_dump() | {"runtime": runtime}),
    )
    registry = configured_registry(database_url)

    def card(number: int, entries: list[dict[str, Any]]) -> str:
        return render_model_card(
            student,
            version=number,
            metrics=spec.metrics,
            gate=spec.gate,
            lineage=spec.lineage(),
            files=entries,
            license=spec.license,
            min_app_version=spec.min_app_version,
        )

    published = registry.publish(spec, specs, card=card, version=version)
    return PublishedVersion(backend=registry.backend, **published.__dict__)


def start_canary(
    student: str, version: int, percent: int, reason: str = "", database_url: str | None = None
) -> int:
    """Start a staged rollout of a just-published version on `percent` % of devices; its id.

    A rollout still running is of an older candidate: this version passed the gate against
    stable since, so that one ends (aborted, "superseded"). A retry finds its own rollout.
    """
    database = _database(database_url, StorageSettings.read())
    for running in rollouts.rollouts(database, student):
        if running.status != "active":
            continue
        if running.version == version:
            return running.id
        rollouts.abort(database, student, reason=f"superseded by v{version}", actor="pipeline")
    short = reason if len(reason) <= 500 else reason[:497] + "..."
    return rollouts.start(database, student, version, percent, reason=short, actor="pipeline").id


def lineage_of(metadata: Mapping[str, Any]) -> VersionLineage:
    """Metadata given as a mapping (a CLI or API caller), checked: unknown keys and a missing
    base model are refused with the keys that are known."""
    unknown = set(metadata) - METADATA_KEYS
    if unknown:
        raise RegistryError(
            f"unknown metadata keys {sorted(unknown)}; known: {sorted(METADATA_KEYS)}"
        )
    if not metadata.get("base_model"):
        raise RegistryError("metadata needs 'base_model' (the Hub id of the student's base)")
    try:
        return VersionLineage(**metadata)
    except ValidationError as exc:
        raise RegistryError(
            f"metadata: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
        ) from None


def promote(
    student: str,
    version: int,
    channel: str = "stable",
    reason: str = "",
    actor: str = "pipeline",
    database_url: str | None = None,
) -> ChannelMove:
    """Point `channel` of `student` at a published version."""
    database = _database(database_url, StorageSettings.read())
    return open_registry(database).promote(
        student, version, channel=channel, reason=reason, actor=actor
    )


def _database(url: str | None, storage: StorageSettings) -> Database:
    if url is None:
        return get_database(storage)
    return get_database(StorageSettings(database_url=url), migrate=False)
