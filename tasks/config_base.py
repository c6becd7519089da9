"""What every configuration shares: unknown keys are refused, and an error reads as one line."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

# Every configuration class (pydantic models and pydantic dataclasses) uses this: a typo'd
# key is an error when the configuration is read, never a default silently kept.
STRICT = ConfigDict(extra="forbid")

_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def fields_of(cls: Any) -> dict[str, Any] | None:
    """Field name -> annotation of a pydantic model or dataclass, None for anything else."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return {name: f.annotation for name, f in cls.model_fields.items()}
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        hints = typing.get_type_hints(cls)
        return {f.name: hints.get(f.name) for f in dataclasses.fields(cls)}
    return None


def _config_class(annotation: Any) -> Any:
    """The configuration class inside `X`, `X | None` or `Optional[X]`, if there is one."""
    if fields_of(annotation) is not None:
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if fields_of(arg) is not None:
                return arg
    return None


def _allowed_at(root: Any, path: tuple[str | int, ...]) -> list[str]:
    """The field names of the configuration class found by walking `path` from `root`."""
    cls = root
    for key in path:
        fields = fields_of(cls) or {}
        if not isinstance(key, str) or key not in fields:
            return []
        cls = _config_class(fields[key])
    return sorted(fields_of(cls) or {})


def _one(root: Any, error: Any) -> str:
    loc = tuple(k for k in error["loc"] if k not in ("__init__", "function-after"))
    where = ".".join(str(k) for k in loc) or "(top level)"
    if error["type"] in _UNKNOWN:
        allowed = _allowed_at(root, loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"unknown key {where!r}{hint} (allowed: {', '.join(allowed)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def config_error(exc: ValidationError, root: Any, what: str) -> str:
    """One line naming every wrong key (with the allowed ones) or value, for a person to fix."""
    problems = [_one(root, e) for e in exc.errors()]
    return f"invalid {what}: " + "; ".join(problems)
