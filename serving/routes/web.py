"""The web page (static HTML+JS, no build step, no CDN) and the JSON it draws its charts from."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from serving.http import documented
from serving.schemas import NO_NUL
from serving.state import service
from storage.models import utcnow
from storage.repo.live_quality import WORSE_WHEN, Estimate, LiveQuality, VersionQuality
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


class EstimateOut(BaseModel):
    """A mean or a share with its 95 % interval and the number of observations."""

    value: float
    low: float
    high: float
    n: int


class LiveDayOut(BaseModel):
    """What users did with one version's answers on one UTC day (None: nothing to measure)."""

    day: date
    interactions: int
    mean_rating: EstimateOut | None = Field(description="rating 1-5 of the rated answers")
    thumbs_down: EstimateOut | None = Field(description="share of rated answers rated 1 or 2")
    corrections: EstimateOut | None = Field(description="share of answers users corrected")
    answer_chars: EstimateOut | None = Field(description="answer length in characters")
    mean_entropy: EstimateOut | None = Field(
        description="mean token entropy in nats (web chat answers only)"
    )


class LiveVersionOut(BaseModel):
    """One version of a student over the days it answered on."""

    student: str
    version: str
    stable: bool = Field(description="the version the student's stable channel points to")
    interactions: int
    days: list[LiveDayOut]


class LiveMetricOut(BaseModel):
    """A metric of the series, and which direction is worse."""

    name: str
    label: str
    worse_when: Literal["higher", "lower"] | None = Field(
        description="None: no direction is better (answer length)"
    )


class LiveQualityOut(BaseModel):
    """Live quality per version and UTC day, over the last `days` days."""

    days: int
    student: str | None
    metrics: list[LiveMetricOut]
    versions: list[LiveVersionOut]


LIVE_METRICS = {
    "mean_rating": "mean rating (1-5)",
    "thumbs_down": "thumbs-down share",
    "corrections": "correction share",
    "answer_chars": "answer length (characters)",
    "mean_entropy": "mean token entropy (nats)",
}

StudentParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        pattern=NO_NUL,
        description="one student (the model name answers carry); all when absent",
    ),
]


def _estimate(e: Estimate | None) -> EstimateOut | None:
    return None if e is None else EstimateOut(value=e.value, low=e.low, high=e.high, n=e.n)


def _day(q: VersionQuality) -> LiveDayOut:
    return LiveDayOut(
        day=q.days[0],
        interactions=q.interactions,
        mean_rating=_estimate(q.mean_rating),
        thumbs_down=_estimate(q.thumbs_down),
        corrections=_estimate(q.corrections),
        answer_chars=_estimate(q.answer_chars),
        mean_entropy=_estimate(q.mean_entropy),
    )


def _worse_when(metric: str) -> Literal["higher", "lower"] | None:
    worse = WORSE_WHEN.get(metric)
    return "higher" if worse == "higher" else "lower" if worse == "lower" else None


def _version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions in number order, others after them by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


@router.get("/live-quality", response_model=LiveQualityOut, responses=documented(422))
async def live_quality(
    request: Request, student: StudentParam = None, days: DaysParam = "30"
) -> LiveQualityOut:
    """What users did with each version's answers, per UTC day: mean rating, thumbs-down
    share, correction share (users' own, not reviewers'), answer length and token entropy,
    each with its 95 % interval. One series per (student, version)."""
    state = service(request)
    window = int(days)  # the pattern admits only 1-366 written in plain digits
    await state.catalog.ensure_fresh()
    stable = {r.student: str(r.version) for r in state.catalog.releases}
    # From the start of the UTC day `window - 1` days back: every day of the series is whole.
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)

    def read() -> list[LiveVersionOut]:
        with state.database.transaction() as session:
            live = LiveQuality.read(
                session, days=window, model_name=student, now=today + timedelta(days=1)
            )
        series = live.daily()
        series.sort(key=lambda s: (s.total.model_name, _version_key(s.total.model_version)))
        return [
            LiveVersionOut(
                student=s.total.model_name,
                version=s.total.model_version,
                stable=stable.get(s.total.model_name) == s.total.model_version,
                interactions=s.total.interactions,
                days=[_day(d) for d in s.days],
            )
            for s in series
        ]

    metrics = [
        LiveMetricOut(name=name, label=label, worse_when=_worse_when(name))
        for name, label in LIVE_METRICS.items()
    ]
    return LiveQualityOut(
        days=window, student=student, metrics=metrics, versions=await run_in_threadpool(read)
    )


def mount(app: FastAPI) -> None:
    """Serve the page at /web/ (and send / there)."""
    app.include_router(router)
    app.mount("/web", StaticFiles(directory=WEB_DIR, html=True), name="web")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/web/")
