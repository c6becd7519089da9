"""Precision and recall of the PII scrub per entity: the patterns used before beside today's.

A labelled set is generated with Faker in several locales (seeded) and mixed into chat prompts:
entities the scrub must catch (e-mails, phone numbers, card numbers, IBANs, URL secrets),
entities it does not try to catch (names, street addresses, national ID numbers: their recall is
printed as measured) and look-alikes it must leave alone (order numbers, dates, timestamps,
prices, versions, ISBNs, quantities, 16-digit numbers that fail Luhn). The hand-written patterns
used before (bench/_pii_old.py, frozen) and tasks/prepare/pii.py scrub the same texts in this
process.

Recall: an entity is caught when placeholders cover at least 80 % of its letters and digits (a
"+49" left before <PHONE> still counts). Precision: the share of one placeholder's spans that
overlap an entity of that kind. Look-alikes: how many had any character masked. Throughput:
texts per second over the whole set (best of --repeat), a PII-dense worst case.
"""

from __future__ import annotations

import argparse
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _pii_old  # noqa: E402

from tasks.prepare import pii  # noqa: E402

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "ja_JP")
CAUGHT = ("EMAIL", "PHONE", "CARD", "IBAN", "SECRET")  # what the scrub is meant to catch
NOT_CAUGHT = ("NAME", "ADDRESS", "NATIONAL_ID")  # PII it does not look for
LOOKALIKES = ("ORDER", "DATE", "TIMESTAMP", "PRICE", "VERSION", "ISBN", "QUANTITY", "NON_LUHN_16")
COVERED = 0.8  # share of an entity's letters and digits that must be masked to count as caught

# Chat prompts with slots; a slot's name is the kind of value it gets.
TEMPLATES = (
    "Can you make this friendlier? 'Hi, this is {NAME}. Call me back on {PHONE} about order "
    "{ORDER}.'",
    "My card {CARD} was charged {PRICE} twice on {DATE}. How do I dispute it?",
    "Write a short reply to {EMAIL} confirming the meeting on {DATE}.",
    "I pay rent to IBAN {IBAN}, reference {NON_LUHN_16}. Is a SEPA transfer instant?",
    "Why does this link stop working after an hour? {SECRET}",
    "Format this as a letter header: {NAME}, {ADDRESS}, tel. {PHONE}, {EMAIL}",
    "Our build broke when we upgraded to {VERSION} at {TIMESTAMP}. The log says refused.",
    "Is ISBN {ISBN} the paperback or the hardcover? It cost {PRICE}.",
    "Translate to German: 'My phone number is {PHONE} and my e-mail is {EMAIL}.'",
    "Bitte höflicher formulieren: Ich habe am {DATE} {PRICE} an {IBAN} überwiesen, "
    "erreichbar unter {PHONE}.",
    "Peux-tu résumer ce message : « Rappelez-moi au {PHONE}, commande {ORDER}. »",
    "¿Puedes corregir esto? Mi tarjeta {CARD} caduca pronto, escríbeme a {EMAIL}.",
    "The call GET {SECRET} returns 403 since version {VERSION}. Why?",
    "My ID number is {NATIONAL_ID}; should a landlord ask for it?",
    "Tracking says order {ORDER} shipped {TIMESTAMP} to {ADDRESS}. When will it arrive?",
    "Reconcile invoice {ORDER}: {PRICE} paid from {IBAN} on {DATE}.",
    "What is wrong with this config? db_url: {SECRET} timeout: 30",
    "Is {NON_LUHN_16} a valid card number? The shop printed it on my receipt.",
    "Remind {NAME} to call {PHONE} before {DATE}.",
    "Split {PRICE} between three people; I pay with {CARD}.",
    "Version {VERSION} came out on {DATE}; the changelog cites ticket {ORDER}.",
    "We shipped {QUANTITY} units last quarter and {QUANTITY} this one. Growth rate?",
    "Explain this log line: {TIMESTAMP} user {EMAIL} login ok, session {ORDER}.",
    "Ciao, sono {NAME}, il mio numero è {PHONE}. Puoi tradurre in inglese?",
    "Kun je dit verbeteren: 'Bel mij op {PHONE} of mail {EMAIL}, IBAN {IBAN}.'",
    "Pode revisar? Meu telefone é {PHONE} e o pagamento de {PRICE} vence em {DATE}.",
    "この文を英語にしてください: 電話番号は{PHONE}です。",
    "How many digits does {QUANTITY} have, and is {ISBN} an ISBN-13?",
    # No word before the number says "phone": national numbers without a trunk prefix miss.
    "Sort these contacts by name: {NAME}, {PHONE}; {NAME}, {PHONE}; {NAME}, {EMAIL}.",
    "Make a table of: {NAME} | {ADDRESS} | {PHONE} | {EMAIL}",
)

Piece = tuple[str, list[tuple[int, int, str]]]  # text, labelled spans (start, end, kind) in it
Scrub = Callable[[str, dict[str, int]], str]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _luhn_ok(digits: str) -> bool:
    return _pii_old.luhn_valid(digits)


def _grouped(digits: str, rng: random.Random) -> str:
    """As written by people: contiguous, or in groups of four split by spaces or dashes."""
    sep = rng.choice(("", " ", " ", "-"))
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _whole(kind: str) -> Callable[[str], Piece]:
    return lambda text: (text, [(0, len(text), kind)])


def _secret(fake: Faker, rng: random.Random) -> Piece:
    host = fake.domain_name()
    user = fake.user_name()
    token = rng.choice((fake.sha1()[: rng.randint(16, 40)], fake.uuid4(), fake.password(20, False)))
    roll = rng.random()
    if roll < 0.35:
        secret = f"{user}:{fake.password(12, special_chars=False)}"
        scheme = rng.choice(("https", "ftp", "postgres", "redis"))
        head = f"{scheme}://"
        tail = f"@{host}/{fake.uri_path()}"
    else:
        key = rng.choice(("token", "access_token", "api_key", "sig", "password", "session"))
        secret = token
        head = f"https://{host}/{fake.uri_path()}?page={rng.randint(1, 9)}&{key}="
        tail = rng.choice(("", "&lang=en", "#top"))
    return head + secret + tail, [(len(head), len(head) + len(secret), "SECRET")]


def make_generators(fake: Faker, rng: random.Random) -> dict[str, Callable[[], Piece]]:
    """One value generator per slot kind for one locale."""

    def card() -> Piece:
        digits = fake.credit_card_number()
        if rng.random() < 0.4:
            return _whole("CARD")(digits)
        if len(digits) in (14, 15):  # Diners and Amex print as 4-6-4 and 4-6-5
            sep = rng.choice(" -")
            return _whole("CARD")(f"{digits[:4]}{sep}{digits[4:10]}{sep}{digits[10:]}")
        return _whole("CARD")(_grouped(digits, rng))

    def iban() -> Piece:
        value = fake.iban()
        if rng.random() < 0.6:  # the print format: groups of four
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return _whole("IBAN")(value)

    def national_id() -> Piece:
        return _whole("NATIONAL_ID")(fake.ssn())

    def order() -> Piece:
        form = rng.randrange(5)
        value = (
            f"{_digits(rng, 3)}-{_digits(rng, 7)}-{_digits(rng, 7)}",
            f"#{_digits(rng, 8)}",
            f"INV-{rng.randint(2015, 2030)}-{_digits(rng, 6)}",
            f"{_digits(rng, 3)}-{_digits(rng, 4)}-{_digits(rng, 2)}",
            f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{_digits(rng, 9)}",
        )[form]
        return _whole("ORDER")(value)

    def date() -> Piece:
        fmt = rng.choice(("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%B %d, %Y", "%d-%m-%Y"))
        return _whole("DATE")(fake.date_object().strftime(fmt))

    def timestamp() -> Piece:
        moment = fake.date_time()
        value = rng.choice(
            (
                moment.strftime("%Y-%m-%d %H:%M:%S"),
                moment.isoformat(),
                str(int(moment.timestamp())),
                str(int(moment.timestamp() * 1000)),
                moment.strftime("%d.%m.%Y %H:%M"),
            )
        )
        return _whole("TIMESTAMP")(value)

    def price() -> Piece:
        amount = rng.uniform(1, 20_000)
        value = rng.choice(
            (
                f"${amount:,.2f}",
                f"{amount:.2f} €",
                f"£{amount:,.2f}",
                f"R$ {amount:,.2f}",
                "¥" + str(int(amount) * 10),
            )
        )
        return _whole("PRICE")(value)

    def version() -> Piece:
        parts = [str(rng.randint(0, 30)) for _ in range(rng.choice((3, 3, 4)))]
        return _whole("VERSION")(rng.choice(("", "v")) + ".".join(parts))

    def quantity() -> Piece:
        n = rng.randint(1_000_000, 999_999_999)
        return _whole("QUANTITY")(rng.choice((f"{n:,}", str(n), f"{n / 1e4:.4f}")))

    def non_luhn_16() -> Piece:
        while True:
            digits = rng.choice("123456") + _digits(rng, 15)
            if not _luhn_ok(digits):
                return _whole("NON_LUHN_16")(_grouped(digits, rng))

    return {
        "EMAIL": lambda: _whole("EMAIL")(fake.email()),
        "PHONE": lambda: _whole("PHONE")(fake.phone_number()),
        "CARD": card,
        "IBAN": iban,
        "SECRET": lambda: _secret(fake, rng),
        "NAME": lambda: _whole("NAME")(fake.name()),
        "ADDRESS": lambda: _whole("ADDRESS")(fake.address().replace("\n", ", ")),
        "NATIONAL_ID": national_id,
        "ORDER": order,
        "DATE": date,
        "TIMESTAMP": timestamp,
        "PRICE": price,
        "VERSION": version,
        "ISBN": lambda: _whole("ISBN")(rng.choice((fake.isbn13(), fake.isbn10()))),
        "QUANTITY": quantity,
        "NON_LUHN_16": non_luhn_16,
    }


Sample = tuple[str, str, list[tuple[int, int, str]]]  # locale, text, labelled spans


def labelled_set(n: int, seed: int) -> list[Sample]:
    """`n` prompts, locales in turn, each from a template with its slots filled and labelled."""
    rng = random.Random(seed)
    generators = {}
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + i)
        generators[locale] = make_generators(fake, rng)
    fields = [list(string.Formatter().parse(t)) for t in TEMPLATES]
    samples = []
    for k in range(n):
        locale = LOCALES[k % len(LOCALES)]
        text, spans = "", []
        for literal, field, _, _ in rng.choice(fields):
            text += literal
            if field:
                value, inner = generators[locale][field]()
                spans += [(len(text) + a, len(text) + b, kind) for a, b, kind in inner]
                text += value
        samples.append((locale, text, spans))
    return samples


_PLACEHOLDER = re.compile(r"<([A-Z_]+)>")


def masked_spans(original: str, scrubbed: str) -> list[tuple[int, int, str]]:
    """Where in `original` each placeholder of `scrubbed` stands: (start, end, kind)."""
    parts = _PLACEHOLDER.split(scrubbed)
    literals, kinds = parts[0::2], parts[1::2]
    pattern = "(.+?)".join(re.escape(lit) for lit in literals)
    match = re.fullmatch(pattern, original, re.S)
    if match is None:
        raise ValueError(f"cannot align {scrubbed!r} with {original!r}")
    return [(match.start(i + 1), match.end(i + 1), kind) for i, kind in enumerate(kinds)]


def score(samples: list[Sample], scrub: Scrub) -> dict:
    """Recall per entity kind (and per locale for phones), precision per placeholder kind."""
    caught: Counter[str] = Counter()
    total: Counter[str] = Counter()
    phone_by_locale: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hits: Counter[str] = Counter()
    marks: Counter[str] = Counter()
    lookalike_masked: Counter[str] = Counter()
    for locale, text, spans in samples:
        masked = masked_spans(text, scrub(text, {}))
        covered = set()
        for a, b, _ in masked:
            covered.update(range(a, b))
        for a, b, kind in spans:
            total[kind] += 1
            if kind in LOOKALIKES:
                lookalike_masked[kind] += any(i in covered for i in range(a, b))
                continue
            alnum = [i for i in range(a, b) if text[i].isalnum()]
            ok = sum(i in covered for i in alnum) >= COVERED * len(alnum)
            caught[kind] += ok
            if kind == "PHONE":
                phone_by_locale[locale][0] += ok
                phone_by_locale[locale][1] += 1
        for a, b, kind in masked:
            marks[kind] += 1
            hits[kind] += any(k == kind and a < eb and sa < b for sa, eb, k in spans)
    return {
        "recall": {k: caught[k] / total[k] for k in total if k not in LOOKALIKES},
        "precision": {k: hits[k] / marks[k] for k in marks},
        "n": dict(total),
        "lookalike_masked": dict(lookalike_masked),
        "phone_by_locale": {k: c / t for k, (c, t) in phone_by_locale.items()},
    }


def throughput(samples: list[Sample], scrub: Scrub, repeat: int) -> float:
    """Texts per second, best of `repeat` passes over the set."""
    texts = [text for _, text, _ in samples]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            scrub(text, {})
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{100 * value:4.0f}"


def main() -> int:
    """Generate the set, score both scrubbers, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6000, help="labelled prompts")
    parser.add_argument("--seed", type=int, default=0, help="seeds Faker and the templates")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--quick", action="store_true", help="300 prompts, one timed pass")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.repeat = 300, 1
    samples = labelled_set(args.prompts, args.seed)
    old, new = score(samples, _pii_old.scrub_pii), score(samples, pii.scrub_pii)
    print(f"{args.prompts} prompts in {len(LOCALES)} locales: {', '.join(LOCALES)}")
    print("P: share of a placeholder's spans on an entity of its kind; R: share of entities caught")
    print(f"{'entity':<12} {'n':>5} {'old P':>6} {'old R':>6} {'new P':>6} {'new R':>6}")
    for kind in CAUGHT + NOT_CAUGHT:
        cells = [
            _pct(result["precision"].get(kind)) + "  " + _pct(result["recall"].get(kind))
            for result in (old, new)
        ]
        print(f"{kind:<12} {new['n'].get(kind, 0):>5}   {cells[0]}    {cells[1]}")
    print(f"\n{'look-alike':<12} {'n':>5} {'old masked':>11} {'new masked':>11}")
    for kind in LOOKALIKES:
        n = new["n"].get(kind, 0)
        print(
            f"{kind:<12} {n:>5} {old['lookalike_masked'].get(kind, 0):>11}"
            f" {new['lookalike_masked'].get(kind, 0):>11}"
        )
    print(f"\n{'PHONE R by':<12} {'old':>6} {'new':>6}")
    for locale in LOCALES:
        print(
            f"{locale:<12} {_pct(old['phone_by_locale'].get(locale))}"
            f"   {_pct(new['phone_by_locale'].get(locale))}"
        )
    old_rate = throughput(samples, _pii_old.scrub_pii, args.repeat)
    new_rate = throughput(samples, pii.scrub_pii, args.repeat)
    print(f"\nthroughput (texts/s, this PII-dense set): old {old_rate:,.0f}, new {new_rate:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
