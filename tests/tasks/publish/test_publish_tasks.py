"""Publishing tasks: card rendering, backend choice from settings, publish and promote."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from storage.db import Database
from storage.registry import ChecksumMismatchError, RegistryError
from tasks.publish import (
    gate_says_promote,
    metrics_by_set,
    promote,
    publish_version,
    render_model_card,
)
from tests.storage.registry.conftest import make_export
from tests.storage.registry.hub_standin import HubState, create_standin, serve

# huggingface_hub hands httpx2 a file object for LFS PUTs, which httpx2 flags as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:httpx2.*")
TOKEN = "hf_task_token"
METADATA = {
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "base_revision": "12fd25f77366fa6b3b4b768ec3050bf629380bac",
    "teacher": "Qwen/Qwen2.5-7B-Instruct",
    "strategy": "sequence",
    "snapshot_fingerprint": "cd" * 32,
    "min_app_version": "1.4.0",
}
METRICS = {
    "snapshot-test": {"perplexity": 12.34567, "bleu": 20.1, "rougeL": 0.41},
    "benchmark": {"perplexity": 15.0, "bleu": 18.0},
}
GATE = {"promote": True, "reasons": ["perplexity -8% on snapshot-test"], "reference": "stable v1"}


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def export_dicts(directory: Path) -> list[dict[str, Any]]:
    """Files as tasks/export reports them: path, quantization, size, sha256, notes."""
    spec = make_export(directory, "student-Q8_0.gguf")
    data = spec.path.read_bytes()
    return [
        {
            "path": str(spec.path),
            "quantization": "Q8_0",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "notes": [],
        }
    ]


@pytest.fixture
def local_env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Local registry under a temporary artifact root; the database URL to pass to tasks."""
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    return db.url.render_as_string(hide_password=False)


def test_card_has_model_index_lineage_and_gate() -> None:
    lineage = {**{k: METADATA[k] for k in ("base_model", "base_revision", "teacher")}}
    lineage |= {"strategy": "sequence", "snapshot_fingerprint": "cd" * 32, "training_run_id": 7}
    files = [{"name": "s-Q8_0.gguf", "quantization": "Q8_0", "size": 10, "sha256": "ab" * 32}]
    card = render_model_card(
        "smol", version=3, metrics=METRICS, gate=GATE, lineage=lineage, files=files
    )
    meta = front_matter(card)
    assert meta["base_model"] == METADATA["base_model"] and meta["license"] == "apache-2.0"
    assert "gguf" in meta["tags"] and "distillery" in meta["tags"]
    (model,) = meta["model-index"]
    results = {r["dataset"]["name"]: r for r in model["results"]}
    assert set(results) == {"snapshot-test", "benchmark"}
    ppl = [m for m in results["snapshot-test"]["metrics"] if m["type"] == "perplexity"]
    assert ppl[0]["value"] == pytest.approx(12.346)
    assert "# smol v3" in card
    assert f"| snapshot fingerprint | `{'cd' * 32}` |" in card
    assert f"| base revision | `{METADATA['base_revision']}` |" in card
    assert "| teacher | `Qwen/Qwen2.5-7B-Instruct` |" in card
    assert "**Decision:** promote (compared with stable v1)" in card
    assert "- perplexity -8% on snapshot-test" in card
    assert f"| s-Q8_0.gguf | Q8_0 | 10 | `{'ab' * 32}` |" in card


def test_card_without_metrics_or_gate_still_renders() -> None:
    card = render_model_card(
        "smol", version=1, metrics={}, gate=None, lineage={"base_model": "b", "teacher": None}
    )
    assert "model-index" not in front_matter(card)
    assert "| teacher | n/a |" in card and "No gate decision was recorded." in card


def test_gate_and_metric_shapes() -> None:
    assert gate_says_promote({"promote": True}) and gate_says_promote({"decision": "promote"})
    assert not gate_says_promote({"promote": False}) and not gate_says_promote(None)
    assert metrics_by_set({"bleu": 1.0, "note": "x"}) == {"evaluation": {"bleu": 1.0}}


def test_publish_and_promote_tasks_on_the_local_registry(local_env: str, tmp_path: Path) -> None:
    files = export_dicts(tmp_path / "export")
    result = publish_version("smol", files, METADATA, METRICS, GATE, database_url=local_env)
    assert (result.backend, result.version, result.status) == ("local", 1, "published")
    version_dir = tmp_path / "artifacts/models/smol/1"
    readme = (version_dir / "README.md").read_text()
    assert "# smol v1" in readme and front_matter(readme)["model-index"]
    assert (version_dir / "student-Q8_0.gguf").stat().st_size == files[0]["size"]
    again = publish_version("smol", files, METADATA, METRICS, GATE, database_url=local_env)
    assert again.reused and again.version == 1

    moved = promote("smol", 1, reason="gate passed", database_url=local_env)
    assert (moved.to_version, moved.moved, moved.channel) == (1, True, "stable")


def test_publish_task_refuses_bad_input(local_env: str, tmp_path: Path) -> None:
    files = export_dicts(tmp_path / "export")
    with pytest.raises(RegistryError, match=r"unknown metadata keys \['colour'\]"):
        publish_version("smol", files, {**METADATA, "colour": "red"}, database_url=local_env)
    with pytest.raises(RegistryError, match="needs 'base_model'"):
        publish_version("smol", files, {"teacher": "t"}, database_url=local_env)
    tampered = [{**files[0], "sha256": "f" * 64}]
    with pytest.raises(ChecksumMismatchError):
        publish_version("smol", tampered, METADATA, database_url=local_env)


def test_hub_backend_needs_a_token(
    local_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_REGISTRY", "hub")
    monkeypatch.setenv("DISTILLERY_HUB_NAMESPACE", "acme")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("DISTILLERY_HUB_TOKEN_SECRET", raising=False)
    with pytest.raises(RegistryError, match="set HF_TOKEN"):
        publish_version("smol", export_dicts(tmp_path), METADATA, database_url=local_env)


@pytest.fixture
def hub_env(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, HubState]]:
    """DISTILLERY_REGISTRY=hub pointed at the loopback Hub stand-in, token in HF_TOKEN."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    app, state = create_standin(TOKEN)
    with serve(app) as endpoint:
        monkeypatch.setenv("DISTILLERY_REGISTRY", "hub")
        monkeypatch.setenv("DISTILLERY_HUB_NAMESPACE", "acme")
        monkeypatch.setenv("DISTILLERY_HUB_ENDPOINT", endpoint)
        monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield sqlite_db.url.render_as_string(hide_password=False), state


def test_publish_task_to_the_hub_uploads_the_rendered_card(
    hub_env: tuple[str, HubState], tmp_path: Path
) -> None:
    url, state = hub_env
    files = export_dicts(tmp_path / "export")
    result = publish_version("smol", files, METADATA, METRICS, GATE, database_url=url)
    assert result.backend == "hub" and result.hub_revision
    tree = state.repos["acme/smol"].commits[result.hub_revision]
    card = tree["README.md"].decode()
    meta = front_matter(card)  # the stand-in's validate-yaml accepted this model-index
    assert meta["model-index"][0]["name"] == "smol"
    assert f"| snapshot fingerprint | `{'cd' * 32}` |" in card
    assert result.files[0]["url"].endswith(
        f"/acme/smol/resolve/{result.hub_revision}/student-Q8_0.gguf"
    )
    assert ("POST", "/api/validate-yaml") in state.calls and state.unknown == []
