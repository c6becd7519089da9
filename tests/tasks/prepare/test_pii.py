"""The PII scrub on real formats: phone numbers of several countries, IBANs, cards, look-alikes."""

from __future__ import annotations

import pytest

from tasks.prepare.pii import PII_KINDS, luhn_valid, scrub_pii


def scrubbed(text: str) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    return scrub_pii(text, counts), counts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Germany: international, 00 prefix, national with trunk 0, slash as separator.
        ("Ruf mich an: +49 30 901820", "Ruf mich an: <PHONE>"),
        ("0049 89 12345678 ist die Zentrale", "<PHONE> ist die Zentrale"),
        ("Handy 0151 23456789, abends", "Handy <PHONE>, abends"),
        ("Tel. 030/901820", "Tel. <PHONE>"),
        # France
        ("appelle le +33 1 42 68 53 00", "appelle le <PHONE>"),
        ("mon portable 06 12 34 56 78.", "mon portable <PHONE>."),
        ("+33 (0)1 42 68 53 00", "<PHONE>"),
        # United Kingdom
        ("ring +44 20 7946 0958 today", "ring <PHONE> today"),
        ("mobile 07700 900123", "mobile <PHONE>"),
        ("(0161) 496 0066", "<PHONE>"),
        # Japan, also with no space around the number
        ("+81 3-1234-5678", "<PHONE>"),
        ("電話番号は090-1234-5678です。", "電話番号は<PHONE>です。"),
        # Brazil: the area code in parentheses belongs to the number
        ("+55 11 91234-5678", "<PHONE>"),
        ("ligue (11) 91234-5678", "ligue <PHONE>"),
        # North America, with an extension
        ("call (415) 555-2671 x204 now", "call <PHONE> now"),
        ("+1-780-563-6083x7783", "<PHONE>"),
        # Spain writes no trunk prefix: a word before the number says it is a phone number.
        ("mi móvil 612 345 678", "mi móvil <PHONE>"),
    ],
)
def test_phone_numbers_of_several_countries(text: str, expected: str) -> None:
    assert scrubbed(text) == (expected, {"PHONE": 1})


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE89 3704 0044 0532 0130 00.",
        "GB29NWBK60161331926819",
        "FR14 2004 1010 0505 0001 3M02 606",
        "電話番号はNL91ABNA0417164300です",
    ],
)
def test_iban_with_valid_check_digits_is_caught(text: str) -> None:
    out, counts = scrubbed(text)
    assert counts == {"IBAN": 1}
    assert "<IBAN>" in out and not any(ch.isdigit() for ch in out)


@pytest.mark.parametrize(
    "text",
    ["IBAN DE88 3704 0044 0532 0130 00.", "GB28NWBK60161331926819", "NL92ABNA0417164300"],
)
def test_iban_with_wrong_check_digits_is_left(text: str) -> None:
    assert scrubbed(text) == (text, {})


def test_iban_is_cut_before_a_following_word_in_capitals() -> None:
    assert scrubbed("DE89 3704 0044 0532 0130 00 OK?") == ("<IBAN> OK?", {"IBAN": 1})


@pytest.mark.parametrize(
    "text", ["Amex 3782 822463 10005", "Visa 4012888888881881", "MC 5500-0000-0000-0004"]
)
def test_cards_in_their_printed_groupings(text: str) -> None:
    out, counts = scrubbed(text)
    assert counts == {"CARD": 1} and out.endswith(" <CARD>")


@pytest.mark.parametrize(
    "text",
    [
        "16 digits, Luhn fails: 4111 1111 1111 1112",
        # Luhn holds for these, but no card is written 3-7-7 or starts with 7; epoch
        # milliseconds start with 1 and have 13 digits.
        "order 532-9518081-4185149",
        "ref 7700000000000123",
        "at 1703103735617 ms",
        # Phone-like without a country code, a trunk prefix or a word saying phone.
        "order 612 345 678 shipped",
        "epoch 1841443398, 123456789 units",
        # Dates, times, versions, prices, ISBNs, addresses.
        "at 2024-03-15 14:22:05 and 15.03.2024 09:30 or 03/15/2024",
        "upgrade v10.4.22.1 to 2024.03.1",
        "€1.299,00 or $1,299.00 or 3.14159265",
        "ISBN 0-19-450672-X and 978-3-16-148410-0",
        "server 192.168.100.200 port 5432",
    ],
)
def test_look_alikes_are_left(text: str) -> None:
    assert scrubbed(text) == (text, {})


def test_every_kind_in_one_text_is_counted() -> None:
    text = (
        "Mail ann@example.com, call +44 20 7946 0958, pay 4111 1111 1111 1111 to "
        "DE89 3704 0044 0532 0130 00, see https://h.example/x?token=abc123"
    )
    out, counts = scrubbed(text)
    assert out == (
        "Mail <EMAIL>, call <PHONE>, pay <CARD> to <IBAN>, see https://h.example/x?token=<SECRET>"
    )
    assert counts == dict.fromkeys(PII_KINDS, 1)


def test_luhn_from_stdnum_agrees_with_known_numbers() -> None:
    assert luhn_valid("371449635398431") and luhn_valid("6011111111111117")
    assert not luhn_valid("371449635398432")
