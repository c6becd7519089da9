"""Request bodies: pydantic models whose limits come from ServiceSettings, and error shaping."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, create_model

from serving.settings import ServiceSettings

_IGNORE_EXTRA = ConfigDict(extra="ignore")


def _text(max_chars: int, *, required: bool = True) -> Any:
    limit = Field(min_length=1 if required else 0, max_length=max_chars)
    return Annotated[str, limit] if required else Annotated[str | None, limit]


def feedback_model(settings: ServiceSettings) -> type[BaseModel]:
    """The upload body model, `{device_id, interactions: [...], timestamp}`, with these limits."""
    s = settings
    interaction = create_model(
        "InteractionIn",
        __config__=_IGNORE_EXTRA,
        id=(uuid.UUID, ...),
        model_name=(_text(s.max_model_name_chars), ...),
        model_version=(_text(s.max_model_version_chars), ...),
        prompt=(_text(s.max_prompt_chars), ...),
        response=(_text(s.max_response_chars), ...),
        correction=(_text(s.max_correction_chars, required=False), None),
        rating=(Annotated[int | None, Field(ge=1, le=5)], None),
        latency_ms=(Annotated[int | None, Field(ge=0, le=86_400_000)], None),
        category=(_text(s.max_category_chars, required=False), None),
        created_at=(AwareDatetime, ...),
    )
    bounds = Field(min_length=1, max_length=s.max_interactions)
    items: Any = Annotated[list[interaction], bounds]  # type: ignore[valid-type]
    return create_model(
        "FeedbackUpload",
        __config__=_IGNORE_EXTRA,
        device_id=(Annotated[str, Field(min_length=1, max_length=64)], ...),
        interactions=(items, ...),
        timestamp=(AwareDatetime, ...),
    )


class DeviceRegistration(BaseModel):
    """`POST /api/devices` body."""

    model_config = _IGNORE_EXTRA

    platform: Annotated[str, Field(min_length=1, max_length=32)]
    app_version: Annotated[str, Field(min_length=1, max_length=32)]


def field_path(loc: tuple[int | str, ...]) -> str:
    """('interactions', 3, 'prompt') -> 'interactions[3].prompt'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{field, message, type}], the field in `a[3].b` form."""
    return [
        {"field": field_path(err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
