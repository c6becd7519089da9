"""Service settings: request limits, public URL, enrollment, rate limits (DISTILLERY_* env)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from storage.config import DistillerySettings

# Hosts a development profile trusts in the Host header when no public base URL is set.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ServiceSettings(DistillerySettings):
    """Everything the phone-facing service can be tuned with; storage comes from StorageSettings."""

    profile: Literal["development", "production"] = Field(
        "development",
        description="development trusts loopback Host headers; production refuses to start "
        "unless download URLs have a configured origin (public base URL or allowed hosts) "
        "[development | production]",
    )
    max_body_bytes: Annotated[int, Field(gt=0)] = Field(
        2 * 1024 * 1024, description="largest feedback upload body, in bytes (413 above)"
    )
    max_interactions: Annotated[int, Field(gt=0)] = Field(
        500, description="interactions one upload may carry"
    )
    max_prompt_chars: Annotated[int, Field(gt=0)] = Field(
        16_000, description="characters of an uploaded interaction's prompt"
    )
    max_response_chars: Annotated[int, Field(gt=0)] = Field(
        16_000, description="characters of an uploaded interaction's response"
    )
    max_correction_chars: Annotated[int, Field(gt=0)] = Field(
        16_000, description="characters of an uploaded interaction's correction"
    )
    # The schema's column widths (String(128)/String(64)) bound these.
    max_model_name_chars: Annotated[int, Field(gt=0, le=128)] = Field(
        128, description="characters of a model name (at most 128, the column's width)"
    )
    max_model_version_chars: Annotated[int, Field(gt=0, le=64)] = Field(
        64, description="characters of a model version (at most 64, the column's width)"
    )
    max_category_chars: Annotated[int, Field(gt=0, le=128)] = Field(
        128, description="characters of an interaction's category (at most 128)"
    )
    # Channel names are at most 32 characters: "<mobile channel>:<agent>".
    max_agent_chars: Annotated[int, Field(gt=0, le=24)] = Field(
        24, description="characters of an agent name (at most 24: it is part of a channel name)"
    )
    public_base_url: str | None = Field(
        None,
        description="the only origin download URLs are built from, e.g. "
        "https://models.example.com [none: the request's Host, if trusted]",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        [],
        description="without a public base URL, Host headers whose URLs may be used (comma "
        "list); development also trusts loopback names [none]",
    )
    quantization_preference: Annotated[list[str], NoDecode] = Field(
        ["Q4_K_M", "Q4_0", "Q8_0", "F16"],
        description="a release's primary download is its first file in this order (comma list)",
    )
    mobile_channel: str = Field("stable", description="the channel phones are served from")
    # Stores that cannot sign (file://) stream either way.
    artifact_delivery: Literal["stream", "redirect"] = Field(
        "stream",
        description="with a shared artifact store: stream published files from this host, "
        "or redirect (307) to a presigned store URL [stream | redirect]",
    )
    artifact_url_seconds: Annotated[int, Field(gt=0, le=7 * 24 * 3600)] = Field(
        3600, description="how long a presigned download URL stays valid [3600]"
    )
    manifest_cache_seconds: Annotated[float, Field(ge=0)] = Field(
        1.0,
        description="seconds a rendered manifest is reused unchecked; after that one cheap "
        "query decides whether to re-render (0: check every request)",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans and metrics (Prometheus /metrics is always on)",
    )
    enrollment: Literal["open", "key", "approval"] = Field(
        "open",
        description="who may register a device: open (demo), key (HMAC of timestamp, nonce "
        "and body with the enrollment key) or approval (pending until `distillery devices "
        "approve`) [open | key | approval]",
    )
    enrollment_key: SecretStr | None = Field(
        None, description="the app's shared secret for enrollment=key"
    )
    # A nonce is remembered for twice the window, so a replay inside it is refused.
    enrollment_window_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        300.0,
        description="a signed registration is accepted this many seconds from its timestamp, once",
    )
    registration_rate_limit: str = Field(
        "20/minute", description="device registrations per client address (limits syntax)"
    )
    upload_rate_limit: str = Field(
        "120/minute",
        description="feedback uploads and other device writes per device (limits syntax)",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="where rate-limit counters live: memory:// (per process) or redis://... "
        "(shared by workers and hosts)",
    )
    device_daily_quota: Annotated[int, Field(ge=0)] = Field(
        20_000, description="interactions one device may add per UTC day (0: no quota)"
    )
    default_consent: Literal["train", "evaluate", "none"] = Field(
        "train",
        description="what an interaction without `consent` (an older app) allows: train (any "
        "use), evaluate (held-out checks only) or none (counted, never stored)",
    )
    group_commit_max_uploads: Annotated[int, Field(ge=1)] = Field(
        32,
        description="uploads waiting at the same moment share one transaction, up to this "
        "many (1: off)",
    )

    # Web chat (/v1/chat/completions): the mobile channel's version of a student, run by
    # llama.cpp in a worker process (chat_runtime.worker) on the file phones download.
    chat_enabled: bool = Field(True, description="serve the web chat and its OpenAI-style API")
    chat_max_tokens: Annotated[int, Field(gt=0)] = Field(
        512, description="largest max_tokens a chat request may ask for"
    )
    chat_default_max_tokens: Annotated[int, Field(gt=0)] = Field(
        256, description="max_tokens of a chat request that names none"
    )
    chat_max_prompt_chars: Annotated[int, Field(gt=0)] = Field(
        8_000, description="characters of a chat request's messages together"
    )
    chat_max_messages: Annotated[int, Field(gt=0)] = Field(
        32, description="messages one chat request may carry"
    )
    chat_max_body_bytes: Annotated[int, Field(gt=0)] = Field(
        256 * 1024, description="largest chat request body, in bytes (413 above)"
    )
    chat_max_concurrent: Annotated[int, Field(gt=0)] = Field(
        1,
        description="generations at once over all students; one more gets 429 with Retry-After",
    )
    chat_rate_limit: str = Field(
        "60/minute", description="chat requests per device (limits syntax)"
    )
    chat_max_workers: Annotated[int, Field(gt=0)] = Field(
        2,
        description="llama.cpp worker processes kept, one per student; the least recently "
        "used one is stopped",
    )
    chat_context_tokens: Annotated[int, Field(ge=256)] = Field(
        2048, description="context window of a chat worker, in tokens"
    )
    chat_threads: Annotated[int, Field(ge=0)] = Field(
        0, description="CPU threads of a chat worker (0: all cores but one)"
    )
    chat_start_timeout_s: Annotated[float, Field(gt=0)] = Field(
        120.0, description="seconds a chat worker may take to load its model"
    )
    chat_top_logprobs: Annotated[int, Field(ge=1, le=20)] = Field(
        5, description="alternatives shown per token in the live uncertainty (1-20)"
    )
    chat_low_p: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.3, description="probability under which a token counts as low-confidence"
    )
    chat_alert_spike_entropy: Annotated[float, Field(gt=0)] = Field(
        3.0, description="entropy (nats) of a token that raises a spike alert"
    )
    chat_alert_low_run: Annotated[int, Field(ge=1)] = Field(
        4, description="low-confidence tokens in a row that raise a run alert"
    )

    @field_validator("quantization_preference", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("registration_rate_limit", "upload_rate_limit", "chat_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse  # the limiter's own grammar, e.g. "20/minute"

        parse(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an absolute http(s) URL, e.g. https://models.example.com")
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _coherent(self) -> ServiceSettings:
        if self.profile == "production" and not (self.public_base_url or self.allowed_hosts):
            raise ValueError(
                "profile=production needs DISTILLERY_PUBLIC_BASE_URL or DISTILLERY_ALLOWED_HOSTS:"
                " download URLs must never be built from an untrusted Host header"
            )
        if self.enrollment == "key" and not self.enrollment_key:
            raise ValueError("enrollment=key needs DISTILLERY_ENROLLMENT_KEY (the app's secret)")
        return self

    def trusted_hosts(self) -> frozenset[str]:
        """Host names (without port) whose Host header may build download URLs."""
        extra = LOOPBACK_HOSTS if self.profile == "development" else ()
        return frozenset(h.lower() for h in (*self.allowed_hosts, *extra))
