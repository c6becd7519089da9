"""Quality filter: which texts and ratings are unusable, each reported by a named reason."""

from __future__ import annotations

import re

# C0 controls except tab/newline/carriage return, DEL and C1 controls: never typed by people.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# U+FFFD is what a failed decode leaves; the rest is UTF-8 read as Latin-1/cp1252 ("Ã©", "â€™").
_BROKEN = re.compile("\ufffd|[\u00c2\u00c3][\u0080-\u00bf]|\u00e2\u20ac")
_LONG_RUN = re.compile(r"\S{200,}")  # base64 blobs, hex dumps, minified junk
_LETTER = re.compile(r"[^\W\d_]")

DROP_REASONS = (
    "invalid_rating",
    "not_text",
    "empty",
    "too_long",
    "too_short",
    "lone_surrogate",
    "control_chars",
    "broken_encoding",
    "non_text",
    "unrated",
    "mediocre_rating",
    "low_rating_no_correction",
    "duplicate",
)


def check_rating(rating: object) -> str | None:
    """None for an acceptable rating (1-5 or absent), else the drop reason."""
    if rating is None:
        return None
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        return "invalid_rating"
    return None


def check_text(text: object, *, min_chars: int, max_chars: int) -> str | None:
    """None for usable text, else why not; cheap str tests gate every regex (hot path)."""
    if not isinstance(text, str):
        return "not_text"
    size = len(text)
    if not size or text.isspace():
        return "empty"
    if size > max_chars:  # before any regex: a huge field costs nothing more
        return "too_long"
    if len(text.strip()) < min_chars:
        return "too_short"
    ascii_only = text.isascii()
    if not ascii_only and _SURROGATE.search(text):
        return "lone_surrogate"
    if not text.isprintable() and _CONTROL.search(text):  # newlines make isprintable False too
        return "control_chars"
    if not ascii_only and _BROKEN.search(text):
        return "broken_encoding"
    if (size >= 200 and _LONG_RUN.search(text)) or (size >= 20 and not _LETTER.search(text)):
        return "non_text"
    return None
