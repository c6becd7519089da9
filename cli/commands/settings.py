"""`distillery settings`: every DISTILLERY_ variable, its value here and its default."""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from serving.settings import ServiceSettings
from storage.config import PREFIX, DistillerySettings, InvalidSettings, Settings, StorageSettings
from storage.registry.config import RegistrySettings
from tasks.settings import PipelineSettings

# Each variable is declared in exactly one of these (tests/test_settings.py checks it).
GROUPS: dict[str, type[DistillerySettings]] = {
    "storage: where data lives": StorageSettings,
    "registry: where versions are published": RegistrySettings,
    "pipeline: the tools that prepare, train and export": PipelineSettings,
    "service: the phone-facing API and the web chat": ServiceSettings,
}


def variables() -> list[str]:
    """Every setting's variable name, group by group."""
    return [f"{PREFIX}{name.upper()}" for cls in GROUPS.values() for name in cls.model_fields]


def warn_misspelled() -> None:
    """A warning on stderr for each DISTILLERY_ name that is a near-miss of a setting's.

    Only near-misses: the converter's subprocess and the test suite use a few other
    DISTILLERY_ names that are not settings and must pass silently.
    """
    known = variables()
    for name in sorted(os.environ):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                print(f"⚠ {name} is not a setting; did you mean {close[0]}?", file=sys.stderr)


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(set)" if value.get_secret_value() else "(empty)"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return _shown(field.default_factory())
    return _shown(field.default).replace(str(Path.home()), "~")


def settings_markdown() -> str:
    """One table per group: variable, type and default (docs/settings.md)."""
    out = []
    for title, cls in GROUPS.items():
        out += [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            meaning = (field.description or "").replace("|", "\\|")
            out.append(f"| `{PREFIX}{name.upper()}` | `{_default(field)}` | {meaning} |")
        out.append("")
    return "\n".join(out)


def settings(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per group")] = False,
) -> int:
    """Every setting with its value on this machine (environment and .env; secrets masked)."""
    status = 0
    warn_misspelled()
    for title, cls in GROUPS.items():
        try:
            values = Settings.read(cls).get(cls)
        except InvalidSettings as exc:
            print(f"✗ {title.split(':')[0]}: {str(exc).splitlines()[0]}", file=sys.stderr)
            status = 2
            continue
        if as_json:
            shown = {f"{PREFIX}{n.upper()}": _shown(getattr(values, n)) for n in cls.model_fields}
            print(json.dumps({"group": title.split(":")[0], "settings": shown}))
            continue
        print(f"{title}:")
        for name in cls.model_fields:
            key = f"{PREFIX}{name.upper()}"
            note = "  (from the environment)" if key in os.environ else ""
            print(f"  {key}={_shown(getattr(values, name))}{note}")
    return status
