"""The review view and the live-quality chart in headless Chromium, on a live uvicorn.

No model runs here: the answers to review and the live feedback are stored rows, as phones
and the web chat leave them. Screenshots go to $DISTILLERY_SCREENSHOT_DIR (else tmp).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Interaction
from storage.repo.devices import set_role
from tests.browser.test_web_page import browser, db, shots_dir
from tests.serving.catalog_rows import add_version
from tests.serving.conftest import serving_live
from tests.tasks.prepare.conftest import insert, make_row

pytestmark = pytest.mark.browser
__all__ = ["browser", "db"]

STUDENT = "smollm2-chat"


@pytest.fixture
def web_server(db: Database, tmp_path: Path) -> Iterator[str]:
    """A live service on the test database, chat off (nothing here needs a model)."""
    env = {
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "DISTILLERY_MANIFEST_CACHE_SECONDS": "0",
        "DISTILLERY_CHAT_ENABLED": "false",
    }
    with serving_live(env) as base_url:
        yield base_url


def uncertainty(share: float, entropy: float) -> dict:
    return {
        "tokens": 24,
        "mean_entropy": entropy,
        "low_p_share": share,
        "alert_counts": {"spike": 1} if entropy > 2 else {},
        "thresholds": {"low_p": 0.3, "spike_entropy": 3.0, "low_run": 4},
    }


def answers_to_review(db: Database) -> dict[str, uuid.UUID]:
    """Two uncertain web answers, a phone's thumbs-down, and answers that are not offered."""
    now = datetime.now(UTC)
    rows = {
        "unsure": make_row(
            1,
            model_name=STUDENT,
            source="web",
            prompt="What is the capital of Australia?",
            response="The capital of Australia is Sydney, the largest city.",
            rating=None,
            uncertainty=uncertainty(0.62, 2.4),
        ),
        "shaky": make_row(
            2,
            model_name=STUDENT,
            source="web",
            prompt="How many legs does a spider have?",
            response="A spider has six legs.",
            rating=None,
            uncertainty=uncertainty(0.35, 1.1),
        ),
        "disliked": make_row(
            3,
            prompt="Convert 5 km to miles.",
            response="5 km is 8 miles.",
            rating=1,
        ),
    }
    confident = make_row(4, source="web", rating=None, uncertainty=uncertainty(0.02, 0.3))
    insert(db, [*rows.values(), confident, make_row(5, rating=5)], received_at=now)
    return {k: v["id"] for k, v in rows.items()}


def test_a_reviewer_corrects_the_least_sure_answer_and_it_leaves_the_queue(
    web_server: str, browser: object, db: Database, tmp_path: Path
) -> None:
    ids = answers_to_review(db)
    page = browser.new_page(viewport={"width": 1000, "height": 900})  # type: ignore[attr-defined]
    page.goto(f"{web_server}/web/")
    page.wait_for_function("window.__review.role !== null")
    assert page.evaluate("window.__review.role") == "user"
    assert not page.is_visible("#tab-review")  # not a reviewer: no review view
    device_id = page.evaluate("JSON.parse(localStorage.getItem('distillery.device')).device_id")

    with db.transaction(write=True) as session:  # what `distillery devices grant` does
        set_role(session=session, device_ids=[device_id], role="reviewer")
    page.reload()
    page.wait_for_selector("#tab-review", state="visible")
    page.click("#tab-review")
    page.wait_for_function("document.querySelectorAll('.review-item').length === 3")
    items = page.locator(".review-item")
    expected = [ids["unsure"], ids["shaky"], ids["disliked"]]
    assert [items.nth(i).get_attribute("data-id") for i in range(3)] == [str(i) for i in expected]
    first = items.first.inner_text()
    assert "What is the capital of Australia?" in first and "Sydney" in first
    assert "62% of tokens had p < 0.3" in first and "mean entropy 2.40 nats" in first
    assert "web chat" in first and "not rated" in first
    assert "rated 1 of 5" in items.nth(2).inner_text()
    assert page.inner_text("#review-status") == "3 answer(s) to review"
    out = shots_dir(tmp_path)
    page.screenshot(path=str(out / "web-review.png"), full_page=True)

    items.first.locator("textarea").fill("The capital of Australia is Canberra.")
    with page.expect_response(f"**/api/review/{ids['unsure']}") as saved:
        items.first.locator("button").click()
    assert saved.value.status == 200
    page.wait_for_function("document.querySelectorAll('.review-item').length === 2")
    assert page.evaluate("window.__review.saved") == 1
    assert page.inner_text("#review-status") == "2 answer(s) to review"
    page.screenshot(path=str(out / "web-review-after.png"), full_page=True)
    with db.transaction() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == ids["unsure"]))
        assert row is not None
        assert (row.correction, row.correction_source, row.reviewed_by) == (
            "The capital of Australia is Canberra.",
            "review",
            device_id,
        )
    page.click("#review-refresh")  # the queue itself no longer holds it
    page.wait_for_function("document.querySelector('#review-status').textContent.startsWith('2')")
    assert page.locator(".review-item").first.get_attribute("data-id") == str(ids["shaky"])

    with db.transaction(write=True) as session:  # `distillery devices revoke-role`
        set_role(session=session, device_ids=[device_id], role="user")
    page.click("#review-refresh")
    page.wait_for_selector("#tab-review", state="hidden")
    assert "is not a reviewer" in page.inner_text("#review-status")


def live_feedback(db: Database) -> None:
    """v1 then v2 of the student answering over six days; v2 is rated better and is stable."""
    add_version(db, STUDENT, 1, [], stable=False)
    add_version(db, STUDENT, 2, [])
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    n = 0
    plan = {
        "1": [(5, [1, 2, 4, 2, 5, 1]), (4, [2, 3, 1, 4]), (3, [2, 5, 1, 3, 2])],
        "2": [(3, [4, 5, 5]), (2, [5, 4, 5, 3, 5]), (1, [4, 5, 5, 5]), (0, [5, 5, 4, 5])],
    }
    for version, days in plan.items():
        for back, ratings in days:
            rows = []
            for rating in ratings:
                n += 1
                rows.append(make_row(n, model_name=STUDENT, model_version=version, rating=rating))
            insert(db, rows, received_at=today - timedelta(days=back))


def test_the_quality_view_draws_one_line_per_version_over_days(
    web_server: str, browser: object, db: Database, tmp_path: Path
) -> None:
    live_feedback(db)
    page = browser.new_page(viewport={"width": 1000, "height": 1100})  # type: ignore[attr-defined]
    page.goto(f"{web_server}/web/")
    page.click("#tab-quality")
    page.wait_for_selector(".live-card canvas")
    card = page.locator(".live-card").first
    assert card.inner_text().startswith(STUDENT)
    assert "31 answers in 30 days" in card.inner_text()
    legend = card.locator(".version-key").all_inner_texts()
    assert [key.strip() for key in legend] == ["v1", "v2 (stable)"]
    assert page.input_value("#live-metric") == "mean_rating"
    labels = page.eval_on_selector_all("#live-metric option", "os => os.map(o => o.value)")
    assert labels == ["mean_rating", "thumbs_down", "corrections", "answer_chars", "mean_entropy"]

    # Each version's line is drawn in its own colour (charts.js: COLORS[0], COLORS[1]).
    count = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const n = {v1: 0, v2: 0};
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] === 0x1e && d[i+1] === 0x88 && d[i+2] === 0xe5) n.v1++;
          if (d[i] === 0x6a && d[i+1] === 0x3f && d[i+2] === 0xd1) n.v2++;
        }
        return n; }"""
    drawn = card.locator("canvas").evaluate(count)
    assert drawn["v1"] > 50 and drawn["v2"] > 50, drawn
    out = shots_dir(tmp_path)
    page.screenshot(path=str(out / "web-live-quality.png"), full_page=True)

    page.select_option("#live-metric", "thumbs_down")
    page.wait_for_function(
        "document.querySelector('.live-card .muted').textContent.includes('higher')"
    )
    assert "higher is worse" in page.locator(".live-card").first.inner_text()
    page.select_option("#live-days", "7")
    page.wait_for_function(
        "document.querySelector('.live-card .muted').textContent.includes('in 7 days')"
    )
    page.locator(".live-card").first.screenshot(path=str(out / "web-live-thumbs-down.png"))
