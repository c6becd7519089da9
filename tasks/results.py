"""The base of every stage result: a frozen pydantic model whose field docstrings describe it.

Pydantic rather than plain dataclasses: Prefect validates and serializes flow parameters and
persisted results of pydantic models as JSON, and the field docstrings show in its UI.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StageResult(BaseModel):
    """A value one stage hands to the next: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
