"""The Colab notebook executes top to bottom (papermill) on CPU with tiny presets.

Its install cell runs for real: the kernel is a fresh virtual environment that sees this
environment's packages (so nothing is downloaded but the build backend) and pip-installs the
project from this checkout, as a user's Colab does from theirs, then llama-cpp-python through
the project's builder (the wheel `make install` cached). Two sessions, each a fresh kernel,
share one data dir, as two Colab sessions share a Drive folder: the second continues the loop.
"""

from __future__ import annotations

import json
import re
import site
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "colab_cycle.ipynb"
KERNEL = "distillery-notebook-test"
STUDENT = "tiny-llama-student"


def _kernel_venv(root: Path) -> Path:
    """A venv whose kernel sees our packages through a .pth line; returns its JUPYTER_PATH."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    child_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Plain path lines: our site-packages (pip, torch, prefect, ...) become visible, but not our
    # editable install of distillery (its .pth is not processed), so the notebook's own
    # `pip install <checkout>` is what puts distillery into this environment.
    parents = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (Path(child_site) / "parent-env.pth").write_text("\n".join(dict.fromkeys(parents)) + "\n")
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    return root / "jupyter"


def test_notebook_has_a_parameters_cell() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "install = True" in tagged[0].source


def _run_session(path: Path, output: Path, data_dir: Path, seed: int) -> str:
    """One Colab session: a fresh kernel runs the notebook top to bottom; returns its output."""
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters={
            "install": True,
            "source": str(REPO),
            "llama_cpp": True,
            "teacher": "tiny-llama-teacher",
            "student": "tiny-llama-student",
            "max_steps": 3,
            "scoring": {"limit": 4, "max_new_tokens": 8, "batch_size": 4},
            "phones": 2,
            "interactions": 30,
            "seed": seed,
            "data_dir": str(data_dir),
            "hf_offline": True,
        },
        kernel_name=KERNEL,
        cwd=str(REPO),
        execution_timeout=900,
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    return "\n".join(
        out.get("text", "") or json.dumps(out.get("data", {}))
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def _runs(data_dir: Path) -> list[tuple[int, dict[str, object]]]:
    """(id, metrics) of the student's training runs in the session's database, oldest first."""
    with sqlite3.connect(data_dir / "distillery.db") as conn:
        rows = conn.execute(
            "SELECT id, metrics FROM training_runs WHERE student = ? ORDER BY id", (STUDENT,)
        ).fetchall()
    return [(run_id, json.loads(metrics or "{}")) for run_id, metrics in rows]


def test_two_sessions_on_one_data_dir_continue_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel inherits this environment: tests never reach the Hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("DISTILLERY_SAMPLE_DATA", raising=False)
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_venv(tmp_path)))
    data_dir = tmp_path / "data"  # Drive's folder on Colab: it outlives the session's kernel

    first = _run_session(NOTEBOOK, tmp_path / "first.ipynb", data_dir, seed=7)
    assert f"installing distillery from {REPO}" in first
    assert "installed distillery 0.1.0" in first
    # llama.cpp comes through the project's builder (the wheel make install cached here).
    assert "cached wheel" in first and "judges the GGUF files" in first
    assert "GPU: none (CPU run)" in first
    assert "precision: fp32" in first
    assert re.search(r"peak \(\+10 %, context\) .* fits", first)  # the memory plan, before loading
    assert "accepted 60" in first
    # The cycle ran through; the last cell asserts it completed and prints the manifest.
    assert "tiny-llama-student: published v1" in first
    assert '"student": "tiny-llama-student"' in first
    assert (data_dir / "distillery.db").is_file()
    ((v1_run, v1_metrics),) = _runs(data_dir)
    assert not str(v1_metrics.get("warm_start", "")).startswith("continues")

    # A second session, new kernel, new seed: new feedback and a v2 candidate that continues
    # from v1's adapter and reuses the teacher signals the first session cached.
    second = _run_session(NOTEBOOK, tmp_path / "second.ipynb", data_dir, seed=8)
    assert "cached wheel" in second and "accepted 60" in second
    cache = re.search(r"teacher cache: (\d+) records through the teacher, (\d+) reused", second)
    assert cache, second[-3000:]
    assert int(cache.group(2)) > 0
    runs = _runs(data_dir)
    assert [run_id for run_id, _ in runs][0] == v1_run and len(runs) == 2
    assert str(runs[1][1]["warm_start"]).startswith("continues ")
    outcome = re.search(r"tiny-llama-student: (published v2|rejected)", second)
    assert outcome, second[-3000:]
    if outcome.group(1) == "published v2":
        # llama.cpp made the delta: a phone that has the base downloads only the adapter.
        assert '"role": "base"' in second and '"role": "adapter"' in second
