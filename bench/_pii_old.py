"""Frozen baseline for bench/pii.py: tasks/prepare/pii.py as it was before issue 29 item 4.

Hand-written patterns only (e-mails, phone shapes, Luhn-checked cards, URL secrets), kept
verbatim so the bench can measure the maintained-library scrubber beside it in one process.
"""

from __future__ import annotations

import re

PII_KINDS = ("SECRET", "EMAIL", "CARD", "PHONE")

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@:]+:[^\s/?#@]+@")
_SECRET_KEYS = (
    "access_token|api_key|apikey|auth|client_secret|key|pass|passwd|password|pwd|secret"
    "|session|sessionid|sig|signature|token"
)
_URL_PARAM = re.compile(rf"(?i)([?&](?:{_SECRET_KEYS})=)[^&#\s]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_NUMBERISH = re.compile(r"\d[\d ().+-]{5,}\d")  # cheap gate: no such run, no card or phone
_CARD = re.compile(r"(?<![\d\w+])(?:\d[ -]?){12,18}\d(?![\d\w])")
_PHONE = re.compile(
    r"""(?<![\w+])(?:
        \+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}      # +49 151 1234 5678, +15551234567
      | \(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}     # (555) 123-4567
      | \d{3}[ .-]\d{3,4}[ .-]\d{4}               # 555-123-4567, 555 123 4567
      | 0\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}        # 07700 900123 (national trunk prefix)
    )(?!\w)""",
    re.X,
)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scrub_pii(text: str, counts: dict[str, int]) -> str:
    """Replace PII by <EMAIL>/<PHONE>/<CARD>/<SECRET>, adding what was found to `counts`."""

    def secret(prefix: str) -> str:
        counts["SECRET"] = counts.get("SECRET", 0) + 1
        return f"{prefix}<SECRET>"

    # URL credentials first: "user:pw@host.com" would otherwise read as an e-mail address.
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(lambda m: secret(m.group(1)) + "@", text)
    if "=" in text:
        text = _URL_PARAM.sub(lambda m: secret(m.group(1)), text)
    if "@" in text:
        text, n = _EMAIL.subn("<EMAIL>", text)
        if n:
            counts["EMAIL"] = counts.get("EMAIL", 0) + n
    if _NUMBERISH.search(text):
        text = _CARD.sub(lambda m: _card(m.group(0), counts), text)  # before phones: longer
        text = _PHONE.sub(lambda m: _phone(m.group(0), counts), text)
    return text


def _card(match: str, counts: dict[str, int]) -> str:
    digits = match.replace(" ", "").replace("-", "")
    if not luhn_valid(digits):
        return match
    counts["CARD"] = counts.get("CARD", 0) + 1
    return "<CARD>"


def _phone(match: str, counts: dict[str, int]) -> str:
    digits = sum(ch.isdigit() for ch in match)
    if not 7 <= digits <= 15:
        return match
    counts["PHONE"] = counts.get("PHONE", 0) + 1
    return "<PHONE>"
