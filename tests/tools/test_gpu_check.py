"""tools/gpu_check.py: refuses without CUDA in one line, and asks its scripts only for flags
they have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    return load_script("tools/gpu_check.py", "gpu_check")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: run make gpu-check")
def test_without_cuda_it_stops_and_says_so() -> None:
    done = subprocess.run(
        [sys.executable, "tools/gpu_check.py"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "✗ no CUDA device here: make gpu-check runs on a GPU machine"


@pytest.mark.parametrize("quick", [False, True])
def test_every_flag_it_passes_exists(quick: bool) -> None:
    for name, command in _tool().steps(quick):
        if command[1] == "-m" and command[2] == "pytest":
            continue
        help_cmd = [*command[: command.index(next(a for a in command if a.startswith("--")))]]
        shown = subprocess.run(
            [*help_cmd, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert shown.returncode == 0, (name, shown.stderr[-500:])
        for flag in (a for a in command if a.startswith("--")):
            assert flag in shown.stdout, f"{name}: {flag} is not an option"


def test_the_presets_it_names_exist_and_the_cycle_downloads_nothing() -> None:
    from tasks.models.presets import get_preset

    for name, command in _tool().steps(quick=False):
        named = [command[i + 1] for i, a in enumerate(command) if a in ("--teacher", "--student")]
        presets = [get_preset(value) for value in named]  # raises on an unknown name
        if name == "bench/cycle.py":
            # Built here from published shapes: no weights to fetch on an offline GPU server.
            assert [p.source for p in presets] == ["shape", "shape"], named
