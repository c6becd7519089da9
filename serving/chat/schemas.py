"""OpenAI-compatible chat request/response models, with the student, version and uncertainty."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.schemas import NO_NUL

# OpenAI clients send fields we do not use (n, user, ...): ignored. Types are strict, as in
# uploads: "5", 4.0 and true are not a max_tokens, "true" and 1 are not a stream flag.
_IN = ConfigDict(extra="ignore", strict=True)


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = _IN

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(pattern=NO_NUL, max_length=100_000)]


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions`; limits beyond these are the service settings (chat_*)."""

    model_config = _IN

    model: Annotated[str | None, Field(max_length=160)] = Field(
        None, description="A student name (GET /v1/models); omitted: the first student."
    )
    messages: Annotated[
        list[ChatMessage],
        Field(
            min_length=1,
            max_length=1000,
            description="The conversation; the last message must be the user's (422 otherwise).",
        ),
    ]
    stream: bool = False
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    seed: int | None = None
    logprobs: bool = Field(False, description="Return each token's log-probability (OpenAI).")
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None

    @model_validator(mode="after")
    def _user_speaks_last(self) -> ChatRequest:
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be the user's")
        return self


class TokenUncertainty(BaseModel):
    """One streamed token: its probability under the model and the entropy (nats)."""

    index: int
    text: str
    p: float
    entropy: float


class UncertaintyAlert(BaseModel):
    """An entropy spike or a run of low-confidence tokens."""

    kind: Literal["spike", "low_confidence_run"]
    index: int
    value: float
    message: str


class UncertaintySummary(BaseModel):
    """Per answer: mean entropy, share of tokens with p below the threshold, alerts."""

    tokens: int
    mean_entropy: float | None
    max_entropy: float | None
    mean_p: float | None
    low_p_share: float | None
    alert_counts: dict[str, int]
    alerts: list[UncertaintyAlert]
    thresholds: dict[str, float]


class Usage(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerMessage(BaseModel):
    """The assistant's answer."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one answer (n=1)."""

    index: int = 0
    message: AnswerMessage
    logprobs: dict[str, Any] | None = None
    finish_reason: str


class ChatCompletion(BaseModel):
    """A whole answer; streamed as `chat.completion.chunk` events with the same extensions."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The student that answered.")
    system_fingerprint: str = Field(description="`<student>:v<version>`: which file spoke.")
    choices: list[Choice]
    usage: Usage
    student: str
    version: int
    interaction_id: uuid.UUID | None = Field(
        description="The stored interaction (None for an empty answer, not stored): rate or "
        "correct it with POST /api/training/feedback (same id, a later updated_at)."
    )
    uncertainty: UncertaintySummary
    tokens: list[TokenUncertainty]


class ModelCard(BaseModel):
    """One student that can chat: the version its channel points to."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "distillery"
    version: int
    file_name: str | None
    quantization: str | None


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
