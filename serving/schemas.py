"""Request and response models of the API: strict types, limits from ServiceSettings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
)

from serving.settings import ServiceSettings

# Unknown fields are ignored: a newer app may send more than this server knows.
_IN = ConfigDict(extra="ignore")


def no_nul(value: str) -> str:
    """Refuse NUL: PostgreSQL text cannot hold it, and no phone sends it on purpose."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


def date_time_text(value: object) -> object:
    """Refuse a number where the document asks for RFC 3339 text: pydantic would read it as
    Unix time, and a client that sends one has a bug to see (a schema fuzzer found it)."""
    if isinstance(value, int | float):  # bool too: it is an int
        raise ValueError("must be an RFC 3339 date-time string, not a number")
    return value


def in_utc_range(value: datetime) -> datetime:
    """A timestamp that converts to UTC within years 1..9999 (stored as UTC everywhere)."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("timestamp is out of range once converted to UTC") from None


# NUL refused by a pattern: checked in pydantic-core (Rust), and stated in the document.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=NO_NUL)]
# Agent names become channel and file names (stable:<agent>): a portable alphabet only.
AGENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Timestamp = Annotated[AwareDatetime, BeforeValidator(date_time_text), AfterValidator(in_utc_range)]
Consent = Literal["train", "evaluate", "none"]
# strict: "5", 5.0 and true are refused, not coerced (a client bug must surface).
StrictCount = Annotated[int, Field(strict=True, ge=0, le=86_400_000)]


def _text(max_chars: int, *, required: bool = True) -> Any:
    limit = Field(min_length=1 if required else 0, max_length=max_chars)
    return Annotated[Text, limit] if required else Annotated[Text | None, limit]


def feedback_model(settings: ServiceSettings) -> type[BaseModel]:
    """The upload body model, `{device_id, interactions: [...], timestamp}`, with these limits."""
    s = settings
    interaction = create_model(
        "InteractionIn",
        __config__=_IN,
        __doc__="One answer the phone's model gave, with the user's rating and correction.",
        id=(uuid.UUID, Field(description="Client-generated id; a re-upload is idempotent.")),
        model_name=(_text(s.max_model_name_chars), ...),
        model_version=(_text(s.max_model_version_chars), ...),
        prompt=(_text(s.max_prompt_chars), ...),
        response=(_text(s.max_response_chars), ...),
        correction=(_text(s.max_correction_chars, required=False), None),
        rating=(Annotated[int | None, Field(strict=True, ge=1, le=5)], None),
        latency_ms=(StrictCount | None, None),
        category=(_text(s.max_category_chars, required=False), None),
        agent=(
            Annotated[str | None, Field(pattern=AGENT_PATTERN, max_length=s.max_agent_chars)],
            Field(
                None,
                description="The on-phone agent that answered (letters, digits, '.', '_', '-'); "
                "a cycle may train one adapter per agent.",
            ),
        ),
        consent=(
            Consent | None,
            Field(
                None,
                description="What the user allows: train (any use), evaluate (held-out "
                "quality checks only, never training) or none (counted, never stored). "
                f"Absent: the operator's default ({s.default_consent}).",
            ),
        ),
        created_at=(Timestamp, ...),
        updated_at=(
            Timestamp | None,
            Field(
                None,
                description="When the user last changed rating or correction; a re-upload "
                "with a later updated_at replaces them (last write wins).",
            ),
        ),
    )
    bounds = Field(min_length=1, max_length=s.max_interactions)
    items: Any = Annotated[list[interaction], bounds]
    return create_model(
        "FeedbackUpload",
        __config__=_IN,
        __doc__="A batch of interactions from one device.",
        device_id=(Annotated[Text, Field(min_length=1, max_length=64)], ...),
        interactions=(items, ...),
        timestamp=(Timestamp, ...),
    )


class DeviceRegistration(BaseModel):
    """`POST /api/devices` body."""

    model_config = _IN

    platform: Annotated[Text, Field(min_length=1, max_length=32)]
    app_version: Annotated[Text, Field(min_length=1, max_length=32)]


class DeviceCredentials(BaseModel):
    """A new device's id and bearer token (shown once: only a hash is stored)."""

    device_id: str
    token: str
    token_type: Literal["bearer"] = "bearer"
    status: Literal["active", "pending"] = Field(
        description="pending: uploads are refused (403) until an admin approves the device."
    )


class DeviceOut(BaseModel):
    """The calling device as the service knows it."""

    device_id: str
    role: Literal["user", "reviewer"] = Field(
        description="user: uploads and chats; reviewer: also corrects others' answers "
        "(GET /api/review/queue), granted by an operator"
    )


class FeedbackResult(BaseModel):
    """What one upload stored."""

    batch_id: uuid.UUID
    accepted: int = Field(description="interactions newly stored")
    updated: int = Field(description="stored interactions whose rating/correction changed")
    duplicates: int = Field(description="interactions already stored (or repeated)")
    not_stored: int = Field(
        0, description="interactions counted but not stored: consent none, or erased before"
    )
    received: int


class FieldError(BaseModel):
    """One invalid field."""

    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error: a one-line `detail`; validation errors add the fields."""

    detail: str
    errors: list[FieldError] | None = None


class ManifestFile(BaseModel):
    """One downloadable file of a release."""

    name: str | None
    url: str
    size: int | None
    sha256: str | None
    quantization: str | None
    format: str | None
    role: Literal["merged", "adapter", "base"] = Field(
        "merged", description="merged model, this version's LoRA adapter, or the shared base"
    )


class ManifestBase(ManifestFile):
    """The base GGUF the adapters apply to: the same file for every version on this base."""

    role: Literal["merged", "adapter", "base"] = "base"
    revision: str | None = None


class ManifestAdapter(ManifestFile):
    """A LoRA adapter in llama.cpp's GGUF adapter format, applied over the base at run time."""

    role: Literal["merged", "adapter", "base"] = "adapter"
    scale: float = Field(1.0, description="llama.cpp's adapter scale (1.0 = as trained)")
    base_sha256: str | None = Field(None, description="sha256 of the base it was made for")
    lora_rank: int | None = None
    lora_alpha: float | None = None


class ManifestAgent(BaseModel):
    """One agent's own adapter over the same base, on its own channel."""

    agent: str
    version: int
    adapter: ManifestAdapter
    same_base: bool = Field(description="its base is this entry's base (one load serves both)")
    merged_url: str | None
    released_at: datetime | None


class ManifestFetch(BaseModel):
    """What the asking phone must download (sent when it gives current_version/base_sha256)."""

    kind: Literal["none", "adapter", "merged"]
    files: list[str | None]
    bytes: int
    full_bytes: int = Field(description="size of the merged file, for comparison")


class ManifestModel(BaseModel):
    """The version a student's channel points to and its primary download."""

    student: str
    version: int
    channel: str = Field(
        "stable",
        description="where this device gets the student from: the mobile channel (stable), "
        "or canary while a staged rollout includes it",
    )
    download_url: str
    file_name: str | None
    size: int | None
    sha256: str | None
    quantization: str | None
    format: str | None
    base_model: str
    base_revision: str | None
    released_at: datetime | None
    min_app_version: str | None
    files: list[ManifestFile]
    base: ManifestBase | None = None
    adapter: ManifestAdapter | None = None
    agents: list[ManifestAgent] = Field(default_factory=list)
    fetch: ManifestFetch | None = None
    update_available: bool | None = None


class Manifest(BaseModel):
    """What phones poll: the latest version of every student on the mobile channel."""

    channel: str
    models: list[ManifestModel]
    current_version: int | None = None
    update_available: bool | None = None


class VersionOut(BaseModel):
    """One version of a student."""

    version: int
    status: str
    base_model: str
    base_revision: str | None
    teacher: str | None
    strategy: str | None
    snapshot_id: int | None
    training_run_id: int | None
    metrics: dict[str, float]
    gate: dict[str, Any]
    channels: list[str]
    files: int
    hub_revision: str | None
    created_at: datetime
    published_at: datetime | None
    agent: str | None = Field(None, description="set for one agent's adapter over the base")
    sizes: dict[str, int] = Field(
        default_factory=dict, description="bytes per file role: merged, adapter, base"
    )
    runtime: dict[str, Any] = Field(
        default_factory=dict,
        description="memory to run base + adapter per quantization (approximate), the "
        "quantized variants and the PEFT config",
    )


class ChannelEventOut(BaseModel):
    """One promotion or rollback."""

    id: int
    channel: str
    action: str
    from_version: int | None
    to_version: int | None
    reason: str
    actor: str
    created_at: datetime


class VersionHistory(BaseModel):
    """Every version of a student, its channels and the promotion audit trail."""

    student: str
    channels: dict[str, int | None]
    versions: list[VersionOut]
    events: list[ChannelEventOut]


class Health(BaseModel):
    """Database reachability and schema state."""

    status: Literal["ok", "degraded", "unavailable"]
    database: Literal["ok", "unreachable"]
    schema_revision: str | None = None
    schema_head: str | None = None
    schema_current: bool | None = None
    error: str | None = None
    version: str


def field_path(loc: tuple[int | str, ...]) -> str:
    """('body', 'interactions', 3, 'prompt') -> 'interactions[3].prompt'."""
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"
