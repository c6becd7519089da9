"""The web page (static HTML+JS, no build step, no CDN) and the JSON it draws its charts from."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from serving.http import documented
from serving.state import service
from storage.repo.web import feedback_per_day, version_scores

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
router = APIRouter(prefix="/api/web", tags=["web"])


class DayVolumeOut(BaseModel):
    """Interactions received on one UTC day from one source."""

    day: date
    source: str
    interactions: int
    rated: int
    corrected: int


class FeedbackVolume(BaseModel):
    """Feedback volume per day over the last `days` days."""

    days: int
    volume: list[DayVolumeOut]


class VersionScoreOut(BaseModel):
    """The newest evaluation of a version on one set."""

    version: int
    eval_set: str
    label: str
    metrics: dict[str, float]


class StudentQuality(BaseModel):
    """Quality over the versions of one student."""

    student: str
    stable_version: int | None
    scores: list[VersionScoreOut]


class Quality(BaseModel):
    """Every student with evaluated versions."""

    students: list[StudentQuality]


# A query value is text: an int parameter would read "1_0", "+5", " 5" and "5.0" as numbers.
# The pattern admits 1-366 in plain digits only, and says so in the schema.
DaysParam = Annotated[
    str,
    Query(
        pattern=r"^(36[0-6]|3[0-5][0-9]|[12][0-9]{2}|[1-9][0-9]?)$",
        description="days back from today, 1-366, plain digits",
        examples=["30"],
    ),
]


@router.get("/feedback-volume", response_model=FeedbackVolume, responses=documented(422))
async def feedback_volume(request: Request, days: DaysParam = "30") -> FeedbackVolume:
    """Interactions per UTC day and source (phone/web), with how many were rated or corrected."""
    state = service(request)
    window = int(days)  # the pattern admits only 1-366 written in plain digits

    def read() -> list[DayVolumeOut]:
        with state.database.transaction() as session:
            rows = feedback_per_day(session=session, days=window)
        return [DayVolumeOut(**vars(r)) for r in rows]

    return FeedbackVolume(days=window, volume=await run_in_threadpool(read))


@router.get("/quality", response_model=Quality)
async def quality(request: Request) -> Quality:
    """Per student, the evaluations of its versions (perplexity, BLEU, ROUGE, ... per set)."""
    state = service(request)
    await state.catalog.ensure_fresh()
    stable = {r.student: r.version for r in state.catalog.releases}

    def read() -> list[StudentQuality]:
        with state.database.transaction() as session:
            scores = version_scores(session=session)
        by_student: dict[str, list[VersionScoreOut]] = {}
        for s in scores:
            by_student.setdefault(s.student, []).append(
                VersionScoreOut(
                    version=s.version, eval_set=s.eval_set, label=s.label, metrics=s.metrics
                )
            )
        names = sorted(set(by_student) | set(stable))
        return [
            StudentQuality(student=n, stable_version=stable.get(n), scores=by_student.get(n, []))
            for n in names
        ]

    return Quality(students=await run_in_threadpool(read))


def mount(app: FastAPI) -> None:
    """Serve the page at /web/ (and send / there)."""
    app.include_router(router)
    app.mount("/web", StaticFiles(directory=WEB_DIR, html=True), name="web")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/web/")
