"""Review for people: enrolled reviewers read uncertain and low-rated answers and correct them.

A reviewer is a device an operator granted the `reviewer` role (`distillery devices grant
reviewer ID`); every other device is refused with 403. The queue and the store are
`storage/repo/review.py`; a correction is stored on the interaction with
`correction_source = "review"` and trains the next cycle with a weight (README, "Web chat").
"""

# No `from __future__ import annotations`: FastAPI must see the body model itself.

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from serving.http import (
    ApiError,
    GuardedRoute,
    before_body,
    documented,
    read_limited_body,
    require_json,
    utf8_body,
)
from serving.routes.feedback import bearer
from serving.state import service
from storage.repo.devices import REVIEWER
from storage.repo.review import NotReviewable, ReviewItem, review_queue, store_review

router = APIRouter(prefix="/api/review", route_class=GuardedRoute, tags=["review"])

_BODY_MAX_BYTES = 256 * 1024  # a correction of max_correction_chars in any UTF-8 fits


class ReviewItemOut(BaseModel):
    """An answer offered for review, and why."""

    interaction_id: uuid.UUID
    source: str = Field(description="phone (a phone's model answered) or web (the web chat)")
    model_name: str
    model_version: str
    prompt: str
    response: str
    rating: int | None = Field(description="the user's rating, 1-5 (1: thumbs down), if any")
    received_at: datetime
    score: float = Field(
        description="how unsure the model was: low-p share + mean entropy / 10 "
        "(0 when nothing was measured, as for phones' answers)"
    )
    low_p_share: float | None = Field(description="share of tokens with a low probability")
    mean_entropy: float | None = Field(description="mean token entropy in nats")
    reasons: list[str] = Field(description="why it is offered, one phrase each")


class ReviewQueue(BaseModel):
    """Uncorrected answers that were uncertain or rated low, the least sure first."""

    items: list[ReviewItemOut]


class ReviewCorrection(BaseModel):
    """The answer the model should have given."""

    model_config = ConfigDict(extra="ignore")

    correction: Annotated[
        str,
        Field(
            min_length=1,
            max_length=16_000,
            # Not blank, no NUL (PostgreSQL text cannot hold it).
            pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
            description="the corrected answer (at most DISTILLERY_MAX_CORRECTION_CHARS)",
        ),
    ]


class ReviewResult(BaseModel):
    """A stored review correction."""

    interaction_id: uuid.UUID
    correction_source: Literal["review"] = "review"
    reviewed_by: str = Field(description="the reviewer's device id")
    reviewed_at: datetime


# A query value is text: an int parameter would read "1_0", "+5" and "5.0" as numbers.
LimitParam = Annotated[
    str,
    Query(
        pattern=r"^(200|1[0-9]{2}|[1-9][0-9]?)$",
        description="most answers to list, 1-200, plain digits",
        examples=["20"],
    ),
]


def _out(item: ReviewItem) -> ReviewItemOut:
    return ReviewItemOut(
        interaction_id=uuid.UUID(item.id),
        source=item.source,
        model_name=item.model_name,
        model_version=item.model_version,
        prompt=item.prompt,
        response=item.response,
        rating=item.rating,
        received_at=item.received_at,
        score=item.score,
        low_p_share=item.low_p_share,
        mean_entropy=item.mean_entropy,
        reasons=list(item.reasons),
    )


@router.get("/queue", response_model=ReviewQueue, responses=documented(401, 403, 422, 429))
async def review_queue_of(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    limit: LimitParam = "50",
) -> ReviewQueue:
    """Answers to correct, the least sure first: web answers whose tokens were uncertain and
    answers rated 2 or lower, not corrected yet, whose users consented to training.
    Reviewers only."""
    state = service(request)
    device_id, _ = await state.auth.device_of(request.headers.get("authorization"), role=REVIEWER)
    state.limits.hit(state.limits.upload, "device", device_id)
    most = int(limit)  # the pattern admits only 1-200 written in plain digits

    def read() -> list[ReviewItemOut]:
        with state.database.transaction() as session:
            return [_out(i) for i in review_queue(session=session, limit=most)]

    return ReviewQueue(items=await run_in_threadpool(read))


async def _reviewer_guard(request: Request) -> None:
    """401/403 (a reviewer only) before the body is read, the rate limit, 415 and 413."""
    state = service(request)
    device_id, _ = await state.auth.device_of(request.headers.get("authorization"), role=REVIEWER)
    state.limits.hit(state.limits.upload, "device", device_id)
    require_json(request)
    request._body = utf8_body(await read_limited_body(request, _BODY_MAX_BYTES))
    request.state.reviewer = device_id


@router.post(
    "/{interaction_id}",
    response_model=ReviewResult,
    responses=documented(401, 403, 404, 409, 413, 415, 422, 429),
)
@before_body(_reviewer_guard)
async def review_answer(
    request: Request,
    interaction_id: Annotated[uuid.UUID, Path(description="the interaction to correct")],
    body: ReviewCorrection,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ReviewResult:
    """Store a reviewer's correction of an answer: it leaves the queue, and the next cycle
    trains on it (weighted by the answer's low-confidence share). Reviewers only; 409 when
    the answer was corrected meanwhile or its user allowed evaluation only."""
    state = service(request)
    reviewer: str = request.state.reviewer
    limit = state.settings.max_correction_chars
    if len(body.correction) > limit:
        message = f"at most {limit} characters (got {len(body.correction)})"
        raise ApiError(
            422,
            f"correction: {message}",
            reason="invalid",
            errors=[{"field": "correction", "message": message, "type": "string_too_long"}],
        )

    def store() -> ReviewResult:
        with state.write_lock(), state.database.transaction(write=True) as session:
            done = store_review(
                session=session,
                interaction_id=interaction_id,
                correction=body.correction.strip(),
                reviewer=reviewer,
            )
        return ReviewResult(
            interaction_id=done.interaction_id,
            reviewed_by=done.reviewed_by,
            reviewed_at=done.reviewed_at,
        )

    try:
        return await run_in_threadpool(store)
    except LookupError:
        raise ApiError(404, f"no interaction {interaction_id}", reason="not_found") from None
    except NotReviewable as exc:
        raise ApiError(409, str(exc), reason=exc.reason) from None
