"""The web page in headless Chromium: chat, watch tokens stream, rate, correct, see quality.

Drives the system's Chromium (Debian: `apt-get install chromium`) with Playwright; skipped
where either is absent. Screenshots go to $DISTILLERY_SCREENSHOT_DIR (else the test's tmp).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Device, Interaction, ModelVersion
from storage.repo.evaluations import add_evaluation
from tests.serving.chat_support import STUDENT, chat_server

pytestmark = pytest.mark.browser
__all__ = ["chat_server"]

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The Chromium binary to drive (DISTILLERY_CHROMIUM overrides), else skip."""
    for name in (os.environ.get("DISTILLERY_CHROMIUM"), *CANDIDATES):
        found = name and (name if os.path.isfile(name) else shutil.which(name))
        if found:
            return str(found)
    pytest.skip("no Chromium on this machine (apt-get install -y chromium)")


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    """One database is enough here: the store's behaviour is covered by the API tests."""
    return sqlite_db


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def add_scores(db: Database) -> None:
    """Evaluations of v1 (stable) and of a rejected v2, as the pipeline stores them."""
    with db.transaction(write=True) as session:
        v1 = session.scalar(select(ModelVersion).where(ModelVersion.student == STUDENT))
        assert v1 is not None
        v2 = ModelVersion(student=STUDENT, version=2, base_model=v1.base_model, status="rejected")
        session.add(v2)
        session.flush()
        for version_id, new, fixed in ((v1.id, 16.2, 21.0), (v2.id, 14.9, 22.4)):
            for eval_set, ppl in (("new-test", new), ("fixed-benchmark", fixed)):
                add_evaluation(
                    session=session,
                    student=STUDENT,
                    label="candidate",
                    eval_set=eval_set,
                    metrics={"perplexity": ppl, "rougeL": 30 - ppl / 2},
                    model_version_id=version_id,
                )


def shots_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("DISTILLERY_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_page_streams_a_chat_rates_it_and_the_turn_is_stored(
    chat_server: tuple[str, int], browser: object, db: Database, tmp_path: Path
) -> None:
    base_url, version = chat_server
    add_scores(db)
    page = browser.new_page(viewport={"width": 1000, "height": 1000})  # type: ignore[attr-defined]
    page.goto(f"{base_url}/")  # redirects to /web/
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    assert page.inner_text("#model") == f"{STUDENT} v{version}"
    page.wait_for_function("document.querySelector('#device').textContent.startsWith('web')")

    page.fill("#max-tokens", "40")
    page.fill("#prompt", "What is the capital of France?")
    page.click("#send")
    page.wait_for_function("window.__chat.done || window.__chat.error", timeout=180_000)
    state = page.evaluate("window.__chat")
    assert state["error"] is None
    spans = page.locator(".turn.assistant .tok")
    assert spans.count() == state["tokens"] == state["turns"][-1]["tokens"] > 0
    # the answer arrived over several network reads as it was generated, not in one piece
    assert state["reads"] > 1
    title = spans.first.get_attribute("title") or ""
    assert re.fullmatch(r"p=\d\.\d{3} · entropy=\d+\.\d\d nats", title), title
    assert spans.first.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    summary = page.inner_text(".turn.assistant .summary")
    assert summary.startswith(f"{STUDENT} v{version} · {state['tokens']} tokens")
    assert "mean entropy" in summary and "alert(s)" in summary

    with page.expect_response("**/api/training/feedback") as rated:
        page.click("#thumbs-up")
    assert rated.value.ok
    page.wait_for_function("document.querySelector('#feedback-status').textContent !== ''")
    assert page.inner_text("#feedback-status") == "saved (updated)"
    page.fill("#correction", "The capital of France is Paris.")
    with page.expect_response("**/api/training/feedback") as corrected:
        page.click("#send-correction")
    assert corrected.value.json()["updated"] == 1
    out = shots_dir(tmp_path)
    page.screenshot(path=str(out / "web-chat.png"), full_page=True)

    interaction_id = state["turns"][-1]["interactionId"]
    with db.transaction() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == uuid.UUID(interaction_id)))
        assert row is not None
        platform = session.scalar(select(Device.platform).where(Device.id == row.device_id))
    assert (row.source, row.model_name, row.model_version, platform) == (
        "web",
        STUDENT,
        str(version),
        "web",
    )
    assert (row.rating, row.correction) == (5, "The capital of France is Paris.")
    assert row.uncertainty == state["turns"][-1]["summary"]
    assert row.response == "".join(spans.all_text_contents())

    page.click("#tab-quality")
    page.wait_for_function("document.querySelector('#volume-note').textContent !== ''")
    note = "1 interactions in the last 30 days: 1 rated, 1 corrected"
    assert page.inner_text("#volume-note") == note
    card = page.locator(".quality-card").first
    assert card.inner_text().startswith(STUDENT)
    assert "stable: v1" in card.inner_text()
    assert page.input_value("#metric") == "perplexity"
    page.screenshot(path=str(out / "web-quality.png"), full_page=True)
