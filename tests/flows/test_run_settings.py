"""A flow's settings are read once at its start and passed to its subflows and task threads."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from prefect import flow, task

from storage.config import Settings, StorageSettings
from tasks.settings import PIPELINE_GROUPS, with_pipeline_settings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("prefect_harness")


@task
def data_dir_in_a_task_thread() -> Path:
    return StorageSettings.read().data_dir


@flow
@with_pipeline_settings
def data_dir_in_a_subflow() -> Path:
    return StorageSettings.read().data_dir


@flow
@with_pipeline_settings
def run_that_sees_the_environment_change(elsewhere: str) -> list[Path]:
    # Whatever changes the environment mid-run, the run keeps the settings it started with.
    os.environ["DISTILLERY_DATA_DIR"] = elsewhere
    submitted = data_dir_in_a_task_thread.submit()
    return [StorageSettings.read().data_dir, submitted.result(), data_dir_in_a_subflow()]


def test_a_run_keeps_the_settings_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "start"))
    seen = run_that_sees_the_environment_change(str(tmp_path / "changed"))
    assert seen == [tmp_path / "start"] * 3
    assert StorageSettings.read().data_dir == tmp_path / "changed"  # outside the run: the env


def test_settings_built_in_code_reach_the_flow_and_its_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way docs/settings.md shows a notebook passing its own settings."""
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "env"))
    given = Settings.read(*PIPELINE_GROUPS).replace(StorageSettings(data_dir=tmp_path / "given"))
    with given.active():
        seen = run_that_sees_the_environment_change(str(tmp_path / "changed"))
    assert seen == [tmp_path / "given"] * 3


BODY_RAN: list[bool] = []


@flow
@with_pipeline_settings
def records_that_it_ran() -> None:
    BODY_RAN.append(True)


def test_a_bad_setting_fails_a_run_before_its_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLERY_PRECISION", "fp8")
    state = records_that_it_ran(return_state=True)
    assert state.is_failed() and not BODY_RAN
    assert "DISTILLERY_PRECISION='fp8'" in str(state.message)


def test_every_flow_reads_its_settings_at_its_start() -> None:
    bare = []
    for path in sorted((REPO / "flows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                names = [ast.unparse(d).split("(")[0] for d in node.decorator_list]
                if "flow" in names and names[names.index("flow") + 1 :][:1] != [
                    "with_pipeline_settings"
                ]:
                    bare.append(f"{path.name}:{node.name}")
    assert not bare, f"put @with_pipeline_settings under @flow: {bare}"
