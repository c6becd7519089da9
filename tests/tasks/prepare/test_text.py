"""Quality filter reasons, PII scrub per kind, target choice and split rules, without a DB."""

from __future__ import annotations

import pytest

from tasks.prepare.config import PrepareConfig
from tasks.prepare.pii import luhn_valid, scrub_pii
from tasks.prepare.quality import check_rating, check_text
from tasks.prepare.records import GroupCap, choose_target, natural_split, prompt_hash


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "not_text"),
        (b"bytes", "not_text"),
        ("", "empty"),
        ("   \n ", "empty"),
        ("x" * 301, "too_long"),
        ("a", "too_short"),
        ("bad \ud800 half", "lone_surrogate"),
        ("nul \x00 inside", "control_chars"),
        ("bell \x07 rings", "control_chars"),
        ("caf\u00c3\u00a9 au lait", "broken_encoding"),
        ("decode \ufffd failed", "broken_encoding"),
        ("blob " + "QUJD" * 60, "non_text"),
        ("1234 5678 9999 0000 1111", "non_text"),
        ("A fine answer.\nWith two lines\tand a tab.", None),
        ("Café, naïve, 東京, emoji 🎉 are fine", None),
    ],
)
def test_check_text_names_each_reason(text: object, reason: str | None) -> None:
    assert check_text(text, min_chars=2, max_chars=300) == reason


@pytest.mark.parametrize(
    ("rating", "ok"),
    [
        (None, True),
        (1, True),
        (5, True),
        (0, False),
        (99, False),
        (-1, False),
        (True, False),
        ("5", False),
    ],
)
def test_check_rating(rating: object, ok: bool) -> None:
    assert (check_rating(rating) is None) is ok


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to jane.doe+tag@mail.example.org today", "write to <EMAIL> today", "EMAIL"),
        ("call +49 151 1234 5678 now", "call <PHONE> now", "PHONE"),
        ("call (555) 123-4567 now", "call <PHONE> now", "PHONE"),
        ("call 555-123-4567 now", "call <PHONE> now", "PHONE"),
        ("pay with 4111 1111 1111 1111.", "pay with <CARD>.", "CARD"),
        ("pay with 5500-0000-0000-0004", "pay with <CARD>", "CARD"),
        ("see https://bob:hunter2@host.example/x", "see https://<SECRET>@host.example/x", "SECRET"),
        ("GET /a?x=1&token=abc123&b=2", "GET /a?x=1&token=<SECRET>&b=2", "SECRET"),
        ("https://h/x?API_KEY=zz9#frag", "https://h/x?API_KEY=<SECRET>#frag", "SECRET"),
    ],
)
def test_scrub_pii_each_kind(text: str, expected: str, kind: str) -> None:
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts) == expected
    assert counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "card-like but Luhn-invalid 4111 1111 1111 1112",
        "dates 2020-10-12 and 1999-2001, pi 3.14159265, 1,000,000 units",
        "ISBN 978-3-16-148410-0 and version 1.2.3",
    ],
)
def test_scrub_pii_leaves_ordinary_numbers(text: str) -> None:
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts) == text
    assert counts == {}


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_choose_target_prefers_correction_and_sets_negatives_apart() -> None:
    cfg = PrepareConfig(good_rating=4, low_rating=2)
    assert choose_target("r", "fixed", 1, cfg) == ("train", "fixed", "correction")
    assert choose_target("r", "  ", 5, cfg) == ("train", "r", "response")
    assert choose_target("r", None, 2, cfg) == ("negative", "r", "low_rating_no_correction")
    assert choose_target("r", None, 3, cfg) == ("drop", None, "mediocre_rating")
    assert choose_target("r", None, None, cfg) == ("train", "r", "response")
    unrated_off = PrepareConfig(keep_unrated=False)
    assert choose_target("r", None, None, unrated_off) == ("drop", None, "unrated")


def test_split_is_by_normalized_prompt_and_near_80_10_10() -> None:
    cfg = PrepareConfig()
    assert prompt_hash("Hello   World") == prompt_hash("hello world")
    splits = [natural_split(prompt_hash(f"prompt {i}"), cfg) for i in range(5000)]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "validation", "test")}
    assert 0.77 < shares["train"] < 0.83 and 0.08 < shares["test"] < 0.12
    # Growing the test share only adds prompts to test: earlier test prompts stay there.
    wider = PrepareConfig(train_ratio=0.7, validation_ratio=0.1)
    for i, split in enumerate(splits):
        if split == "test":
            assert natural_split(prompt_hash(f"prompt {i}"), wider) == "test"


def test_group_cap_keeps_lowest_ranks_per_group() -> None:
    cap = GroupCap(2)
    for group, value in [("a", 5), ("a", 1), ("a", 3), ("b", 9)]:
        cap.add(group, value)
    assert cap.thresholds() == {"a": 3, "b": 9}
    assert cap.counts == {"a": 3, "b": 1}


def test_config_rejects_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="train_ratio"):
        PrepareConfig(train_ratio=0.95, validation_ratio=0.1)
    with pytest.raises(ValueError, match="unknown PrepareConfig fields: bogus"):
        PrepareConfig.from_dict({"bogus": 1})
