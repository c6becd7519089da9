"""PII scrub: e-mails, phone numbers, IBANs, card numbers and URL secrets to placeholders.

Regular expressions only find candidates; maintained libraries decide. Phone numbers are
checked against libphonenumber's numbering plans (`phonenumbers`, Google's library ported
to Python), IBANs against their country's length and format and the mod-97 check digits,
and card numbers by Luhn (both `python-stdnum`). Presidio was not taken: its recognizers for
these entities are the same kind of regex plus checksums, and its analyzer needs spaCy and a
separately downloaded language model. Names and street addresses are not caught (that needs
such a model). `python bench/pii.py` measures precision and recall per entity beside the
hand-written patterns used before.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban as stdnum_iban
from stdnum import luhn

PII_KINDS = ("SECRET", "EMAIL", "IBAN", "CARD", "PHONE")
# Numbers written without a country code are phone numbers when valid in one of these
# regions (tried in this order); "+49 ..." or "0049 ..." are checked for any country.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "JP")

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@:]+:[^\s/?#@]+@")
_SECRET_KEYS = (
    "access_token|api_key|apikey|auth|client_secret|key|pass|passwd|password|pwd|secret"
    "|session|sessionid|sig|signature|token"
)
_URL_PARAM = re.compile(rf"(?i)([?&](?:{_SECRET_KEYS})=)[^&#\s]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Cheap gate: without a run of digits like this there is no IBAN, card or phone number, and
# most text (prose, code, small numbers) stops here.
_NUMBERISH = re.compile(r"\d[\d ().+/-]{5,}\d")
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![A-Za-z0-9_+])(?:\d[ -]?){11,18}\d(?![A-Za-z0-9_])")
_EXT = r" ?(?:x|ext\.?|#) ?\d{1,6}"  # an extension: x123, ext. 123, #123
_PHONE = re.compile(
    r"(?<![A-Za-z0-9_+@/.,#-])(?<!\d:)"  # not inside a word, number, path or reference
    r"(?:\+ ?)?\(?\d(?:[ ()./-]{0,2}\d){5,18}"  # digits and the separators people write
    rf"(?:{_EXT})?"
    r"(?![A-Za-z0-9_@]|[.,/:-][A-Za-z0-9])"  # nor followed by more of one
)
# North American shapes (555-123-4567, (555) 123-4567) are phone numbers even with an area
# code libphonenumber calls unassigned, as the patterns before this module held.
_NANP_SHAPE = re.compile(rf"(?:\(\d{{3}}\) ?|\d{{3}}[.-])\d{{3}}[.-]\d{{4}}(?:{_EXT})?")
_EXTENSION = re.compile(rf"{_EXT}$")
_PHONE_CONTEXT = re.compile(
    r"""(?i)\b(?:tel|phone|call|mobile|cell|fax|whatsapp|sms|dial|handy|ruf|anruf|appel
    |portable|m[oó]vil|celular|cellulare|chiama|ligue|bel|reach)
    | \b(?:my|mio|mi|meu|mon|mein|mijn)\s+(?:number|n[uú]mero|num[eé]ro|nummer)
    | 電話 | 携帯""",
    re.X,
)
_NOT_PHONE = re.compile(
    r"""\d{4}([./-])\d{1,2}\1\d{1,2}\b.*        # 2024-03-15, maybe with a time after it
    | \d{1,2}([./-])\d{1,2}\2\d{2,4}\b.*        # 15.03.2024, 03/15/2024
    | \d{1,3}(?:\.\d{1,3}){3}                   # an IPv4 address
    | [^.]*\.\d{1,2} | \d+\.\d+                    # a price or decimal number
    | .*[-/.\ ]\d                              # ends in one digit: an ISBN, a check digit""",
    re.X,
)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum card numbers carry."""
    return luhn.checksum(digits) == 0


def scrub_pii(text: str, counts: dict[str, int]) -> str:
    """Replace PII by <EMAIL>/<PHONE>/<CARD>/<IBAN>/<SECRET>, adding what was found to `counts`."""

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
        # Longest first: an IBAN holds card- and phone-like runs, a card a phone-like one.
        text = _IBAN.sub(lambda m: _iban(m.group(0), counts), text)
        text = _CARD.sub(lambda m: _card(m.group(0), counts), text)
        text = _PHONE.sub(lambda m: _phone(m, counts), text)
    return text


def _iban(match: str, counts: dict[str, int]) -> str:
    # The pattern may take a following word in capitals ("... 0130 00 OK"): drop whole
    # groups from the end until the checksum holds.
    end = len(match)
    while end >= 15:
        if stdnum_iban.is_valid(match[:end]):
            counts["IBAN"] = counts.get("IBAN", 0) + 1
            return "<IBAN>" + match[end:]
        end = match.rfind(" ", 0, end)
    return match


def _card(match: str, counts: dict[str, int]) -> str:
    digits = match.replace(" ", "").replace("-", "")
    groups = [len(g) for g in re.split("[ -]", match)]
    # Written in groups, a card is 4-4-4-4(-3) or, for Amex and Diners, 4-6-5 and 4-6-4;
    # 262-0592240-9579284 is an order number, whatever its checksum says.
    if len(groups) > 1 and groups[:-1] != [4] * (len(groups) - 1) and groups[:2] != [4, 6]:
        return match
    if not _card_shaped(digits) or not luhn_valid(digits):
        return match
    counts["CARD"] = counts.get("CARD", 0) + 1
    return "<CARD>"


def _card_shaped(digits: str) -> bool:
    """Issuer ranges of ISO/IEC 7812: 2-6 lead (1 only for 15-digit UATP and JCB), and
    12 digits only for Maestro (50, 56-69). Spares epoch milliseconds and the like."""
    if len(digits) == 12:
        return digits[:2] == "50" or "56" <= digits[:2] <= "69"
    return digits[0] in "23456" or (digits[0] == "1" and len(digits) == 15)


def _phone(match: re.Match[str], counts: dict[str, int]) -> str:
    candidate = match.group(0)
    span = _phone_span(candidate, match.string, match.start())
    if span is None:
        return candidate
    counts["PHONE"] = counts.get("PHONE", 0) + 1
    return candidate[: span[0]] + "<PHONE>" + candidate[span[1] :]


def _phone_span(candidate: str, text: str, start: int) -> tuple[int, int] | None:
    """Where in `candidate` (found at `start` in `text`) a phone number stands, or None."""
    number = _EXTENSION.sub("", candidate).replace("(0)", "")
    digits = sum(ch.isdigit() for ch in number)
    if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(candidate):
        return None
    if candidate.startswith(("+", "00")):
        # A country code: possible (right length for that country) is enough.
        try:
            parsed = phonenumbers.parse("+" + candidate[2:] if candidate[0] == "0" else candidate)
        except phonenumbers.NumberParseException:
            return None
        return (0, len(candidate)) if phonenumbers.is_possible_number(parsed) else None
    if _NANP_SHAPE.fullmatch(candidate):
        return 0, len(candidate)
    if not candidate.lstrip("(").startswith("0") and not _PHONE_CONTEXT.search(
        text, max(0, start - 40), start
    ):
        # No country code and no trunk prefix: "942 380 329" or "3420837783" is as likely an
        # order number, a quantity or a timestamp; only a word before it says "phone".
        return None
    # Without one, the number must be valid in a region, written as that region writes it
    # (its national prefix where one is required): the matcher's VALID leniency checks both.
    # The longest match wins: "(11) 91234-5678" is a number in Brazil, its tail one in Spain.
    best: tuple[int, int] | None = None
    for region in PHONE_REGIONS:
        for found in PhoneNumberMatcher(candidate, region, Leniency.VALID):
            if sum(ch.isdigit() for ch in found.raw_string) >= 7:
                if best is None or found.end - found.start > best[1] - best[0]:
                    best = found.start, found.end
        if best == (0, len(candidate)):
            break
    return best
