"""Which registry backend to publish to, from the environment (DISTILLERY_REGISTRY, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from storage.config import DistillerySettings


class RegistrySettings(DistillerySettings):
    """Registry backend settings; the Hub token is deliberately not one of them.

    The token comes only from HF_TOKEN or a Prefect Secret block (read by tasks/publish.py).
    """

    registry: Literal["local", "hub"] = Field(
        "local", description="local (files served by the service) or hub (Hugging Face Hub)"
    )
    hub_namespace: str | None = Field(
        None, description="the Hub user or organisation holding one repo per student"
    )
    hub_endpoint: str | None = Field(
        None, description="the Hub's URL: a mirror or a private Hub [https://huggingface.co]"
    )
    # Phones download from the Hub's resolve URLs without a token: repos are public unless
    # set private (then only token holders, not phones, can fetch the files).
    hub_private: bool = Field(False, description="private repos (phones then cannot download)")
    # Name of a Prefect Secret block holding the Hub token, tried when HF_TOKEN is unset.
    hub_token_secret: str | None = Field(
        None, description="a Prefect Secret block with the Hub token, when HF_TOKEN is unset"
    )
