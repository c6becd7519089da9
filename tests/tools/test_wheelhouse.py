"""tools/wheelhouse.py asks pip for what `make install` takes, torch once, nothing else."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    return load_script("tools/wheelhouse.py", "wheelhouse")


def test_requirements_are_the_install_extras_without_torch() -> None:
    tool = _tool()
    wanted = tool.requirements()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    optional = project["project"]["optional-dependencies"]
    assert not [r for r in wanted if r.startswith("torch")]  # one resolution, with --torch
    for requirement in [*project["project"]["dependencies"], *optional["gpu"], *optional["dev"]]:
        assert requirement in wanted
    assert project["build-system"]["requires"][0] in wanted  # the editable install builds
    make = (REPO / "Makefile").read_text()
    for extra in tool.EXTRAS:  # the wheelhouse covers every extra `make install` names
        assert extra in make
    assert tool.target_args(None, None) == []
    assert tool.target_args("3.11", "manylinux_2_28_x86_64")[0] == "--only-binary=:all:"
