"""Service settings: request limits, public URL, enrollment, rate limits (DISTILLERY_* env)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Hosts a development profile trusts in the Host header when no public base URL is set.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ServiceSettings(BaseSettings):
    """Everything the phone-facing service can be tuned with; storage comes from StorageSettings."""

    model_config = SettingsConfigDict(env_prefix="DISTILLERY_", env_file=".env", extra="ignore")

    # development: loopback Host headers are trusted; production: refuses to start unless
    # download URLs have a configured origin (public_base_url or allowed_hosts).
    profile: Literal["development", "production"] = "development"
    max_body_bytes: Annotated[int, Field(gt=0)] = 2 * 1024 * 1024
    max_interactions: Annotated[int, Field(gt=0)] = 500
    max_prompt_chars: Annotated[int, Field(gt=0)] = 16_000
    max_response_chars: Annotated[int, Field(gt=0)] = 16_000
    max_correction_chars: Annotated[int, Field(gt=0)] = 16_000
    # Column widths of the schema bound these (String(128)/String(64)).
    max_model_name_chars: Annotated[int, Field(gt=0, le=128)] = 128
    max_model_version_chars: Annotated[int, Field(gt=0, le=64)] = 64
    max_category_chars: Annotated[int, Field(gt=0, le=128)] = 128
    # Channel names are at most 32 characters: "<mobile channel>:<agent>".
    max_agent_chars: Annotated[int, Field(gt=0, le=24)] = 24
    # e.g. https://models.example.com: the only origin download URLs are built from.
    public_base_url: str | None = None
    # Without a public base URL, a request's Host must be one of these (env: comma list)
    # for its URLs to be used; development also trusts loopback names.
    allowed_hosts: Annotated[list[str], NoDecode] = []
    # The primary download of a release is its first file in this order (env: comma list).
    quantization_preference: Annotated[list[str], NoDecode] = ["Q4_K_M", "Q4_0", "Q8_0", "F16"]
    mobile_channel: str = "stable"
    # With a shared artifact store (DISTILLERY_ARTIFACT_STORE): "stream" copies a published
    # file once into this host's root and serves it; "redirect" answers 307 to a presigned
    # store URL (S3, GCS) valid artifact_url_seconds, so bytes never pass through here.
    # Stores that cannot sign (file://) stream either way.
    artifact_delivery: Literal["stream", "redirect"] = Field(
        "stream",
        description="with a shared artifact store: stream published files from this host, "
        "or redirect (307) to a presigned store URL [stream | redirect]",
    )
    artifact_url_seconds: Annotated[int, Field(gt=0, le=7 * 24 * 3600)] = Field(
        3600, description="how long a presigned download URL stays valid [3600]"
    )
    # Seconds a rendered manifest is reused without even checking the catalog state;
    # after that one cheap query decides whether to re-render. 0 checks on every request.
    manifest_cache_seconds: Annotated[float, Field(ge=0)] = 1.0
    # FastAPI's native OpenTelemetry spans/metrics (Prometheus /metrics is always on).
    opentelemetry: bool = False

    # Who may teach the model: open (demo), key (HMAC of timestamp, nonce and registration
    # body with enrollment_key), approval (devices pending until `distillery devices approve`).
    enrollment: Literal["open", "key", "approval"] = "open"
    enrollment_key: SecretStr | None = None
    # A signed registration is accepted within this many seconds of its timestamp, once
    # (its nonce is remembered for twice the window).
    enrollment_window_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    # `limits` rate strings; storage "memory://" is per process, "redis://..." is shared.
    registration_rate_limit: str = "20/minute"
    upload_rate_limit: str = "120/minute"
    rate_limit_storage: str = "memory://"
    # Interactions one device may add per UTC day (0: no quota).
    device_daily_quota: Annotated[int, Field(ge=0)] = 20_000
    default_consent: Literal["train", "evaluate", "none"] = Field(
        "train",
        description="what an interaction without `consent` (an older app) allows: train (any "
        "use), evaluate (held-out checks only) or none (counted, never stored)",
    )
    # Group commit: uploads waiting at the same moment share one transaction (1: off).
    group_commit_max_uploads: Annotated[int, Field(ge=1)] = 32

    # Web chat (/v1/chat/completions): the mobile channel's version of a student, run by
    # llama.cpp in a worker process (chat_runtime.worker) on the file phones download.
    chat_enabled: bool = True
    chat_max_tokens: Annotated[int, Field(gt=0)] = 512
    chat_default_max_tokens: Annotated[int, Field(gt=0)] = 256
    # Characters of all messages together, and how many messages one request may carry.
    chat_max_prompt_chars: Annotated[int, Field(gt=0)] = 8_000
    chat_max_messages: Annotated[int, Field(gt=0)] = 32
    chat_max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    # Generations at once over all students; one more is refused with 429 + Retry-After.
    chat_max_concurrent: Annotated[int, Field(gt=0)] = 1
    chat_rate_limit: str = "60/minute"
    # Worker processes kept (one per student); the least recently used one is stopped.
    chat_max_workers: Annotated[int, Field(gt=0)] = 2
    chat_context_tokens: Annotated[int, Field(ge=256)] = 2048
    chat_threads: Annotated[int, Field(ge=0)] = 0  # 0: all CPU cores but one
    chat_start_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    # Live token uncertainty: alternatives per token (top log-probabilities), the probability
    # under which a token counts as low-confidence, the entropy (nats) of a spike, and how
    # many low-confidence tokens in a row raise a run alert.
    chat_top_logprobs: Annotated[int, Field(ge=1, le=20)] = 5
    chat_low_p: Annotated[float, Field(gt=0, lt=1)] = 0.3
    chat_alert_spike_entropy: Annotated[float, Field(gt=0)] = 3.0
    chat_alert_low_run: Annotated[int, Field(ge=1)] = 4

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
