"""One typed configuration: typos fail where the configuration is read, before any work."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.exceptions import ParameterTypeError

from cli.main import main
from flows.perpetual import perpetual_cycle
from tasks.config import CONFIG_ROOTS, ConfigError, CycleConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def _deployments() -> list[dict[str, Any]]:
    return list(yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"])


def _flow_of(entrypoint: str) -> Any:
    module, name = entrypoint.split(":")
    return getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)


@pytest.mark.parametrize("name", sorted(CONFIG_ROOTS))
def test_every_configuration_refuses_an_unknown_key(name: str) -> None:
    cls = CONFIG_ROOTS[name]
    with pytest.raises(ConfigError) as caught:
        load_config(cls, {"no_such_key": 1})
    message = str(caught.value)
    assert f"invalid {name}: unknown key 'no_such_key'" in message
    # The allowed keys are listed, so the reader can fix the typo without opening the code.
    allowed = message.split("(allowed: ")[1].rstrip(")").split(", ")
    assert allowed == sorted(allowed) and len(allowed) >= 2
    assert load_config(cls, {}) == cls()  # the defaults themselves are valid


def test_a_typo_in_a_gate_option_names_the_key_its_neighbour_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CycleConfig, {"evaluate": {"gate": {"answer_gian": "always"}}})
    message = str(caught.value)
    assert message.startswith("invalid CycleConfig: unknown key 'evaluate.gate.answer_gian'")
    assert "did you mean 'answer_gain'?" in message
    assert "allowed: answer_gain, answer_metrics, answer_tolerance" in message


def test_wrong_values_are_named_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            CycleConfig,
            {"evaluate": {"gate": {"answer_gain": "sometimes"}}, "export": {"quantizations": []}},
        )
    message = str(caught.value)
    assert "evaluate.gate.answer_gain: Input should be 'off', 'first_version' or" in message
    assert "export.quantizations:" in message


def test_the_tree_reads_a_yaml_file_and_types_every_branch(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "distill: {max_steps: 3, warm_start_adapter: /tmp/a}\n"
        "evaluate: {scoring: {limit: 4}, gate: {answer_metrics: [rougeL]}}\n"
        "export: {quantizations: [Q8_0]}\n"
    )
    config = load_config(CycleConfig, str(path))
    assert config.distill.max_steps == 3 and config.distill.warm_start_adapter == Path("/tmp/a")
    assert config.evaluate.scoring.limit == 4
    assert config.evaluate.gate.answer_metrics == ("rougeL",)  # a tuple: the policy is hashable
    assert config.export.quantizations == ["Q8_0"]
    # What the Prefect UI edits round-trips: the JSON a deployment stores validates back.
    assert CycleConfig.model_validate(json.loads(config.model_dump_json())) == config


def test_cli_cycle_with_a_typo_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(data))
    typo = {"students": ["tiny-llama-student"], "evaluate": {"gate": {"answer_gian": "always"}}}
    assert main(["cycle", "--config", json.dumps(typo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("✗ invalid CycleConfig: unknown key 'evaluate.gate.answer_gian'")
    assert len(err.splitlines()) == 1
    assert not data.exists()  # no database, no snapshot, no run folder


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_prefect_yaml_parameters_validate_against_their_flow(deployment: dict[str, Any]) -> None:
    flow = _flow_of(deployment["entrypoint"])
    params = flow.validate_parameters(deployment.get("parameters") or {})
    for value in params.values():  # every declared configuration arrives typed, not as a dict
        assert not isinstance(value, dict)


def test_the_weekly_deployment_stages_new_versions_for_the_rollout_watcher() -> None:
    # The fleet's schedule: a new version reaches 10 % of devices first, and the hourly
    # watcher it relies on is deployed beside it.
    deployments = {d["name"]: d for d in _deployments()}
    weekly = perpetual_cycle.validate_parameters(
        deployments["weekly-student-retraining"]["parameters"]
    )
    assert weekly["config"].canary_percent == 10
    assert "hourly-rollout-watch" in deployments


def test_a_typo_in_a_deployment_parameter_is_refused_by_the_flow() -> None:
    (weekly,) = [d for d in _deployments() if d["name"] == "weekly-student-retraining"]
    config = {**weekly["parameters"]["config"], "distill": {"max_step": 3}}
    with pytest.raises(ParameterTypeError, match=r"config\.distill\.max_step"):
        perpetual_cycle.validate_parameters({"config": config})


def test_a_deployment_run_with_a_typo_fails_before_preparing_anything(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(data))
    state = perpetual_cycle(config={"distill": {"max_step": 3}}, return_state=True)
    assert state.is_failed()
    assert "config.distill.max_step" in str(state.message) + repr(state.data)
    assert not data.exists()  # the flow body never ran: no database, no snapshot
