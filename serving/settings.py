"""Service settings: request limits, public URL, manifest policy (DISTILLERY_* env or .env)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storage.config import StorageSettings


class ServiceSettings(BaseSettings):
    """Everything the phone-facing service can be tuned with; storage comes from StorageSettings."""

    model_config = SettingsConfigDict(env_prefix="DISTILLERY_", env_file=".env", extra="ignore")

    max_body_bytes: Annotated[int, Field(gt=0)] = 2 * 1024 * 1024
    max_interactions: Annotated[int, Field(gt=0)] = 500
    max_prompt_chars: Annotated[int, Field(gt=0)] = 16_000
    max_response_chars: Annotated[int, Field(gt=0)] = 16_000
    max_correction_chars: Annotated[int, Field(gt=0)] = 16_000
    # Column widths of the schema bound these (String(128)/String(64)).
    max_model_name_chars: Annotated[int, Field(gt=0, le=128)] = 128
    max_model_version_chars: Annotated[int, Field(gt=0, le=64)] = 64
    max_category_chars: Annotated[int, Field(gt=0, le=128)] = 128
    # e.g. https://models.example.com; unset: URLs are built from the request's base URL.
    public_base_url: str | None = None
    # The primary download of a release is its first file in this order (env: comma list).
    quantization_preference: Annotated[list[str], NoDecode] = ["Q4_K_M", "Q4_0", "Q8_0", "F16"]
    mobile_channel: str = "stable"
    # Seconds a rendered manifest is reused without even checking the catalog state;
    # after that one cheap query decides whether to re-render. 0 checks on every request.
    manifest_cache_seconds: Annotated[float, Field(ge=0)] = 1.0
    artifact_root: Path | None = None
    # FastAPI's native OpenTelemetry spans/metrics (Prometheus /metrics is always on).
    opentelemetry: bool = False

    @field_validator("quantization_preference", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def resolved_artifact_root(self) -> Path:
        """The configured artifact root, else the storage default."""
        if self.artifact_root is not None:
            return self.artifact_root.resolve()
        return StorageSettings().resolved_artifact_root()
