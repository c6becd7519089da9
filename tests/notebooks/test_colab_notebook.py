"""The Colab notebook executes top to bottom (papermill) on CPU with tiny presets.

Its install cell runs for real: the kernel is a fresh virtual environment that sees this
environment's packages (so nothing is downloaded but the build backend) and pip-installs the
project from this checkout, as a user's Colab does from theirs.
"""

from __future__ import annotations

import json
import site
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


def test_notebook_runs_a_cycle_with_tiny_presets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel inherits this environment: tests never reach the Hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("DISTILLERY_SAMPLE_DATA", raising=False)
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_venv(tmp_path)))
    data_dir = tmp_path / "data"
    output = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={
            "install": True,
            "source": str(REPO),
            "teacher": "tiny-llama-teacher",
            "student": "tiny-llama-student",
            "max_steps": 3,
            "scoring": {"limit": 4, "max_new_tokens": 8, "batch_size": 4},
            "phones": 2,
            "interactions": 30,
            "seed": 7,
            "data_dir": str(data_dir),
            "hf_offline": True,
        },
        kernel_name=KERNEL,
        cwd=str(REPO),
        execution_timeout=900,
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    text = "\n".join(
        out.get("text", "") or json.dumps(out.get("data", {}))
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert f"installing distillery from {REPO}" in text
    assert "installed distillery 0.1.0" in text
    assert "GPU: none (CPU run)" in text
    assert "accepted 60" in text
    # The cycle ran through; the last cell asserts it completed and prints the manifest.
    assert '"student": "tiny-llama-student"' in text
    assert (data_dir / "distillery.db").is_file()
