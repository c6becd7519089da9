"""Export with adapter, publish two versions over one base, and read them as a phone and an
operator do: the manifest's fetch plan, the versions API's runtime metadata, `models list`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from tasks.export import llama_cpp_missing_reason
from tasks.export.pipeline import export_for_phones
from tasks.export.report import ExportReport
from tasks.publish import promote, publish_version
from tests.tasks.export.adapters import make_adapter

pytestmark = [
    pytest.mark.skipif(llama_cpp_missing_reason() is not None, reason="llama.cpp missing"),
    pytest.mark.anyio,
    pytest.mark.slow,  # two exports with parity checks: about a minute on 2 cores
]
STUDENT = "tiny-student"
LATEST = "/api/models/mobile/latest"
METADATA = {"base_model": "local/tiny-student", "base_revision": "tiny-r1"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def env(sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    url = sqlite_db.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", url)
    yield url


def _export(llama_dir: Path, tmp_path: Path, seed: int, texts: list[str]) -> ExportReport:
    adapter = make_adapter(llama_dir, tmp_path / f"adapter-{seed}", seed)
    report = export_for_phones(
        llama_dir, adapter, tmp_path / f"export-{seed}", ("Q8_0",), texts, name=STUDENT,
        adapter_gguf=True, base_revision="tiny-r1", base_cache=tmp_path / "bases",
    )  # fmt: skip
    assert report.adapter_reason == "base Q8_0 + adapter pass parity", report.adapter_parity
    return report


async def test_two_versions_one_base_phone_fetches_adapter_only(
    llama_dir: Path,
    sqlite_db: Database,
    env: str,
    tmp_path: Path,
    parity_texts: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports = [_export(llama_dir, tmp_path, seed, parity_texts) for seed in (1, 2)]
    first, second = (report.to_dict() for report in reports)
    roles = {f["role"] if "role" in f else "merged": f for f in second["files"]}
    assert sorted(roles) == ["adapter", "base", "merged"]
    parity = second["adapter_parity"][0]
    assert parity["passed"] and parity["base_quantization"] == "Q8_0"
    # A Q8_0 base rounds W alone, the merged Q8_0 file W + BA: tokens may differ at near-ties
    # (exact token parity is required, and tested, for unquantized bases).
    assert parity["greedy_prompts"] == len(parity_texts) and parity["min_same_greedy"] == 0.0
    assert parity["top1_agreement"] >= parity["min_top1"] == 0.9
    with capsys.disabled():
        print(
            f"ADAPTER PARITY greedy {parity['greedy_same']}/{parity['greedy_prompts']}, "
            f"top-1 {parity['top1_agreement']:.3f}, ppl delta {parity['relative_delta']:+.4f}"
        )
    versions = []
    for report in reports:  # typed files and the delta dicts, as the cycle publishes them
        done = publish_version(STUDENT, report.publishable(), METADATA, database_url=env)
        promote(STUDENT, done.version, database_url=env)
        versions.append(done.version)
    settings = ServiceSettings(
        _env_file=None, manifest_cache_seconds=0, allowed_hosts=["testserver"]
    )  # fmt: skip
    app = create_app(settings=settings, database=sqlite_db, artifact_root=tmp_path / "artifacts")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        [entry] = (await client.get(LATEST)).json()["models"]
        base_sha = entry["base"]["sha256"]
        params = {"current_version": versions[0], "base_sha256": base_sha}
        body = (await client.get(LATEST, params=params)).json()
        history = (await client.get(f"/api/models/{STUDENT}/versions")).json()
        adapter_bytes = (await client.get(entry["adapter"]["url"])).content
    [phone] = body["models"]
    assert phone["fetch"]["kind"] == "adapter" and phone["fetch"]["files"] == [
        f"{STUDENT}-adapter-F16.gguf"
    ]
    assert phone["fetch"]["bytes"] == len(adapter_bytes) < phone["fetch"]["full_bytes"]
    assert phone["adapter"]["base_sha256"] == base_sha and phone["adapter"]["lora_rank"] == 8
    # The base was written twice (two exports) but published once: same bytes, one file.
    assert first["files"][1]["sha256"] == second["files"][1]["sha256"] == base_sha
    assert len(list((tmp_path / "artifacts" / "models" / STUDENT / "base").rglob("*.gguf"))) == 1
    with capsys.disabled():  # the example a phone sees (shown with -s)
        print("MANIFEST " + json.dumps(body, indent=2))

    newest = history["versions"][0]
    assert set(newest["sizes"]) == {"merged", "adapter", "base"}
    memory = newest["runtime"]["memory"]
    assert memory["Q8_0"]["weights_measured"] and not memory["Q4_K_M"]["weights_measured"]
    assert memory["Q8_0"]["adapter_bytes"] == newest["sizes"]["adapter"]
    assert memory["F16"]["total_bytes"] > memory["Q8_0"]["total_bytes"]
    assert newest["runtime"]["peft"]["r"] == 8 and newest["runtime"]["shape"]["n_layers"] == 2

    from cli.main import main

    capsys.readouterr()
    assert main(["models", "list", "--details"]) == 0
    out = capsys.readouterr().out
    assert "ADAPTER" in out and "MEMORY Q4_K_M" in out and "peft:" in out
    assert f"{STUDENT} v{versions[1]}:" in out and "Q8_0    ~" in out
