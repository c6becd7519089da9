"""The configuration tree of a cycle: one typed model per stage, unknown keys refused.

`CycleConfig` is what the weekly deployment, `distillery cycle --config` and the notebook
hand the perpetual cycle; `TeacherConfig` is the bi-weekly teacher fine-tuning's. Each stage
reads only its own branch (`prepare`, `distill`, `evaluate`, `export`), so a stage's options
are declared once, beside its code, and validated when the configuration is read: a typo
fails before any data is prepared, naming the key and the allowed ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from tasks.config_base import STRICT, config_error
from tasks.distill.config import DistillConfig
from tasks.evaluate.config import EvalConfig, EvaluateConfig
from tasks.evaluate.gate import GatePolicy
from tasks.models.presets import get_preset
from tasks.models.remote import check_teacher_name
from tasks.prepare.config import PrepareConfig

QUANTIZATIONS = ("PHONE", "F16", "Q8_0", "Q4_0", "Q4_1", "Q4_K_M")


class ExportConfig(BaseModel, **STRICT, frozen=True):
    """Which files phones get for a published version."""

    quantizations: list[str] = Field(
        default_factory=lambda: ["PHONE"],
        description="GGUF files for phones; PHONE = the first of Q4_K_M, Q4_1, Q8_0 that passes "
        "llama.cpp parity; choices: " + ", ".join(QUANTIZATIONS),
    )
    adapter_gguf: bool = Field(
        True,
        description="also publish the LoRA adapter as a llama.cpp GGUF adapter and the base "
        "GGUF (once per base revision): phones holding the base download only the adapter",
    )

    @field_validator("quantizations")
    @classmethod
    def _known_quantizations(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in QUANTIZATIONS]
        if unknown or not names:
            raise ValueError(f"{unknown or names} is not a list of {', '.join(QUANTIZATIONS)}")
        return names


class CycleConfig(BaseModel, **STRICT):
    """What one cycle trains; every field is editable in the Prefect UI (a typed parameter)."""

    teacher: str = Field("smollm2-135m-instruct", description="teacher model preset")
    students: list[str] = Field(
        default_factory=lambda: ["smollm2-pruned-student"], description="student presets"
    )
    use_teacher_adapter: bool = Field(
        True, description="distill from the bi-weekly fine-tuned teacher LoRA when one exists"
    )
    min_new_records: int = Field(8, ge=0, description="skip a student with fewer new records")
    settle_seconds: float | None = Field(
        None, ge=0, description="leave interactions younger than this for the next cycle"
    )
    prepare: PrepareConfig = Field(
        default_factory=PrepareConfig, description="how feedback becomes a dataset snapshot"
    )
    distill: DistillConfig = Field(
        default_factory=DistillConfig, description="how each student is distilled (LoRA)"
    )
    evaluate: EvaluateConfig = Field(
        default_factory=EvaluateConfig, description="scoring and the release gate"
    )
    export: ExportConfig = Field(default_factory=ExportConfig, description="files for phones")
    agents: list[str] = Field(
        default_factory=list,
        description="also train one adapter per agent (interactions' `agent`), each on its "
        "own channel stable:<agent>",
    )
    agent_min_records: int = Field(
        16, ge=0, description="an agent with fewer training rows also trains on shared rows"
    )
    canary_percent: int | None = Field(
        None,
        ge=1,
        le=100,
        description="publish each new version of a student that has a stable one as a "
        "staged rollout on this share of devices, which the rollout watcher promotes or rolls "
        "back on live feedback; none: straight to stable",
    )
    distill_deployment: str | None = Field(
        None,
        description="train on another pool's worker: the `distill-stage/<name>` deployment "
        "runs each target's training (hosts share the database and DISTILLERY_ARTIFACT_STORE); "
        "none: in this flow run",
    )

    @field_validator("teacher")
    @classmethod
    def _known_teacher(cls, name: str) -> str:
        return check_teacher_name(name)  # a local preset or a remote one (tasks/models/remote.py)

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,23}", name):
                raise ValueError(f"agent {name!r}: letters, digits, '.', '_', '-'; at most 24")
        return names

    @field_validator("students")
    @classmethod
    def _known_students(cls, names: list[str]) -> list[str]:
        for name in names:
            get_preset(name)
        return names


class TeacherConfig(BaseModel, **STRICT):
    """What the bi-weekly teacher fine-tuning trains; editable in the Prefect UI."""

    teacher: str = Field("smollm2-135m-instruct", description="teacher model preset")
    min_new_records: int = Field(8, ge=0, description="skip with fewer new records than this")
    settle_seconds: float | None = Field(None, ge=0, description="newest rows left for later")
    prepare: PrepareConfig = Field(
        default_factory=PrepareConfig, description="how feedback becomes a dataset snapshot"
    )
    distill: DistillConfig = Field(
        default_factory=DistillConfig,
        description="training settings; alpha is always 1 (plain SFT on the feedback)",
    )
    evaluate: EvaluateConfig = Field(
        default_factory=EvaluateConfig,
        description="how the new adapter is judged against the teacher without it and the "
        "adapter in use; cycles distill from it only if the gate passes",
    )

    @field_validator("teacher")
    @classmethod
    def _known_teacher(cls, name: str) -> str:
        return check_teacher_name(name)


# Every configuration a person writes, by the name pydantic gives its errors.
CONFIG_ROOTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        CycleConfig,
        TeacherConfig,
        PrepareConfig,
        DistillConfig,
        EvaluateConfig,
        EvalConfig,
        GatePolicy,
        ExportConfig,
    )
}

Model = TypeVar("Model")


class ConfigError(ValueError):
    """A configuration that does not validate, said in one line (keys, allowed ones, values)."""


def load_config(model: type[Model], source: str | dict[str, Any]) -> Model:
    """Validate a dict, a JSON text or a .json/.yaml file into `model`, or raise ConfigError.

    `model` is any configuration class here: a pydantic model or a pydantic dataclass.
    """
    if isinstance(source, dict):
        data: Any = source
    else:
        path = Path(source)
        is_file = not source.lstrip().startswith("{") and path.suffix in (".json", ".yaml", ".yml")
        if is_file and not path.is_file():
            raise ConfigError(f"no configuration file at {source}")
        text = path.read_text() if is_file else source
        try:
            if is_file and path.suffix != ".json":
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"cannot read the {model.__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"a {model.__name__} is a mapping of keys, got {type(data).__name__}")
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise ConfigError(config_error(exc, model, model.__name__)) from None


def _type_name(annotation: Any) -> str:
    """A short, readable type: `int | None`, `list[str]`, a Literal as its choices."""
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(json.dumps(choice) for choice in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("pathlib.", "")
    return text.replace("NoneType", "None").replace(" | ", " \\| ")


def reference_markdown(root: type = CycleConfig, prefix: str = "", title: str = "") -> str:
    """Every key of the configuration tree with its type and default, as markdown tables.

    With a `title`, only the top level: its branches link to the cycle's sections of the
    same name (the teacher's `prepare` and `distill` are the cycle's classes).
    """
    from pydantic import TypeAdapter

    from tasks.config_base import fields_of

    defaults = TypeAdapter(root).dump_python(TypeAdapter(root).validate_python({}), mode="json")
    rows, nested = [], []
    for name, annotation in (fields_of(root) or {}).items():
        inner = fields_of(annotation) is not None
        if inner:
            nested.append((name, annotation))
            anchor = f"{prefix}{name}".replace(".", "")
            rows.append(
                f"| `{name}` | [{annotation.__name__}](#{anchor}-{annotation.__name__.lower()}) | |"
            )
        else:
            default = json.dumps(defaults.get(name))
            rows.append(f"| `{name}` | `{_type_name(annotation)}` | `{default}` |")
    heading = f"`{title or prefix.rstrip('.') or '(top level)'}`"
    out = [f"### {heading}: {root.__name__}", "", "| key | type | default |", "|---|---|---|"]
    out += rows
    text = "\n".join(out) + "\n"
    for name, annotation in [] if title else nested:
        text += "\n" + reference_markdown(annotation, f"{prefix}{name}.")
    return text


if __name__ == "__main__":  # python -m tasks.config: the reference in docs/configuration.md
    print(reference_markdown(CycleConfig), end="")
    print("\n" + reference_markdown(TeacherConfig, title="teacher-finetune"), end="")
