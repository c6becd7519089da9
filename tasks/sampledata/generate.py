"""Built-in sample tasks: checkable ones (arithmetic, units, dates, words, facts) and open ones.

Phones in the simulator upload feedback on the *training* tasks; evaluation uses the
*benchmark* tasks. A task's side is decided by a hash of its prompt, so the two never
share a prompt, and adding generators never moves an existing task across. Checkable tasks
have one right answer, so quality is measured by exact match as well as by ROUGE/BLEU.
A richer set can replace the built-in one: a JSONL file passed by path or
$DISTILLERY_SAMPLE_DATA (see `load_tasks`).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from tasks.sampledata.open_tasks import OPEN_TASKS
from tasks.settings import PipelineSettings

SAMPLE_DATA_ENV = "DISTILLERY_SAMPLE_DATA"
BENCHMARK_SHARE = 8  # one task in eight (by prompt hash) is held out for the benchmark
NUMBER_ONLY = "Reply with the number only."


@dataclass(frozen=True)
class SampleTask:
    """One prompt with its reference answer."""

    id: str
    """Stable id: `<category>-<hash prefix>`."""
    category: str
    """arithmetic, units, dates, words, facts, define, rewrite, advice, summarize, code."""
    prompt: str
    """What the user asks."""
    answer: str
    """The reference answer (a correction a user would give)."""
    checkable: bool
    """True when the answer is exactly right or wrong (exact match applies)."""
    split: str
    """`benchmark` (evaluation only) or `train` (phones upload feedback on it)."""

    def to_json(self) -> str:
        """One JSONL line (the format `load_tasks` reads back)."""
        return json.dumps(asdict(self), ensure_ascii=False)


def _task(
    category: str, prompt: str, answer: object, checkable: bool = True, split: str | None = None
) -> SampleTask:
    digest = hashlib.sha256(prompt.encode()).digest()
    if split is None:
        split = "benchmark" if digest[0] % BENCHMARK_SHARE == 0 else "train"
    return SampleTask(f"{category}-{digest.hex()[:10]}", category, prompt, str(answer), checkable,
                      split)  # fmt: skip


def _arithmetic(rng: random.Random) -> Iterator[SampleTask]:
    for _ in range(40):
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        yield _task("arithmetic", f"What is {a} + {b}? {NUMBER_ONLY}", a + b)
        hi, lo = max(a, b), min(a, b)
        yield _task("arithmetic", f"What is {hi} minus {lo}? {NUMBER_ONLY}", hi - lo)
        c = rng.randint(2, 9)
        yield _task("arithmetic", f"What is {c} times {a}? {NUMBER_ONLY}", c * a)


_UNITS = (
    ("kilometres", "metres", 1000), ("kilograms", "grams", 1000), ("hours", "minutes", 60),
    ("minutes", "seconds", 60), ("litres", "millilitres", 1000), ("feet", "inches", 12),
    ("days", "hours", 24), ("weeks", "days", 7), ("metres", "centimetres", 100),
    ("dozens", "items", 12),
)  # fmt: skip


def _units(rng: random.Random) -> Iterator[SampleTask]:
    for big, small, factor in _UNITS:
        for value in rng.sample(range(2, 40), 8):
            yield _task("units", f"How many {small} are in {value} {big}? {NUMBER_ONLY}",
                        value * factor)  # fmt: skip
    for celsius in range(-20, 45, 5):
        prompt = f"Convert {celsius} degrees Celsius to Fahrenheit. {NUMBER_ONLY}"
        yield _task("units", prompt, celsius * 9 // 5 + 32)


def _dates(rng: random.Random) -> Iterator[SampleTask]:
    start = date(2000, 1, 1)
    for _ in range(30):
        day = start + timedelta(days=rng.randint(0, 11_000))
        yield _task("dates", f"What day of the week is {day:%d %B %Y}? Reply with the day only.",
                    f"{day:%A}")  # fmt: skip
        n = rng.randint(2, 60)
        prompt = f"What date is {n} days after {day:%Y-%m-%d}? Reply in YYYY-MM-DD format."
        yield _task("dates", prompt, f"{day + timedelta(days=n):%Y-%m-%d}")
    for year in (2023, 2024, 2025, 2028):
        for month in range(1, 13):
            days = calendar.monthrange(year, month)[1]
            name = calendar.month_name[month]
            yield _task("dates", f"How many days are in {name} {year}? {NUMBER_ONLY}", days)


_WORDS = (
    "planet", "window", "garden", "library", "teacher", "bicycle", "distillation", "orange",
    "mountain", "keyboard", "holiday", "umbrella", "kitchen", "triangle", "language", "weather",
    "notebook", "sandwich", "elephant", "calendar", "question", "pharmacy", "airport", "silver",
)  # fmt: skip


def _words(rng: random.Random) -> Iterator[SampleTask]:
    for word in _WORDS:
        yield _task("words", f"How many letters are in the word '{word}'? {NUMBER_ONLY}",
                    len(word))  # fmt: skip
        yield _task("words", f"Spell the word '{word}' backwards. Reply with the word only.",
                    word[::-1])  # fmt: skip
    for _ in range(20):
        numbers = rng.sample(range(1, 100), 4)
        listed = ", ".join(map(str, numbers))
        yield _task("words", f"Sort these numbers from smallest to largest: {listed}. "
                    "Reply with the numbers separated by commas.",
                    ", ".join(map(str, sorted(numbers))))  # fmt: skip


_CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"), ("Portugal", "Lisbon"),
    ("Greece", "Athens"), ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Mexico", "Mexico City"),
    ("Argentina", "Buenos Aires"), ("South Korea", "Seoul"), ("Thailand", "Bangkok"),
    ("Sweden", "Stockholm"), ("Austria", "Vienna"), ("Chile", "Santiago"), ("India", "New Delhi"),
    ("Turkey", "Ankara"), ("Vietnam", "Hanoi"), ("Finland", "Helsinki"), ("Cuba", "Havana"),
)  # fmt: skip
_SYMBOLS = (
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
    ("sodium", "Na"), ("iron", "Fe"), ("gold", "Au"), ("silver", "Ag"), ("copper", "Cu"),
    ("potassium", "K"), ("calcium", "Ca"), ("lead", "Pb"), ("tin", "Sn"), ("zinc", "Zn"),
)  # fmt: skip


def _facts(rng: random.Random) -> Iterator[SampleTask]:
    for country, capital in _CAPITALS:
        yield _task("facts", f"What is the capital of {country}? Reply with the city only.",
                    capital)  # fmt: skip
    for element, symbol in _SYMBOLS:
        yield _task("facts", f"What is the chemical symbol for {element}? "
                    "Reply with the symbol only.", symbol)  # fmt: skip


def _open() -> Iterator[SampleTask]:
    # Few and hand-written, so held out by position: every kind keeps some in each split.
    for i, (category, prompt, answer) in enumerate(OPEN_TASKS):
        yield _task(category, prompt, answer, False, "benchmark" if i % 4 == 3 else "train")


@cache
def _builtin(seed: int = 0) -> tuple[SampleTask, ...]:
    """Every built-in task, deterministic for a seed, prompts unique."""
    rng = random.Random(seed)
    seen: dict[str, SampleTask] = {}
    for gen in (_arithmetic(rng), _units(rng), _dates(rng), _words(rng), _facts(rng), _open()):
        for task in gen:
            seen.setdefault(task.prompt, task)
    return tuple(seen.values())


def load_tasks(path: str | Path | None = None) -> tuple[SampleTask, ...]:
    """Tasks from `path` or $DISTILLERY_SAMPLE_DATA (JSONL), else the built-in ones.

    A line is `{"prompt", "answer", "category"?, "checkable"?, "split"?}` (split: `train`
    or `benchmark`; by prompt hash when absent). Self-instruct records (`instruction`,
    `context`, `response`, `source`) are read too.
    """
    chosen = path or PipelineSettings.read().sample_data
    if not chosen:
        return _builtin()
    source = Path(chosen)
    if not source.is_file():
        hint = f" (from ${SAMPLE_DATA_ENV})" if not path else ""
        raise FileNotFoundError(
            f"sample data {source}{hint} is not a file: pass a JSONL file of "
            '{"prompt", "answer"} lines, or unset it to use the built-in tasks'
        )
    tasks = []
    for line_no, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if "instruction" in rec:  # self-instruct layout
                context = (rec.get("context") or "").strip()
                prompt = rec["instruction"].strip() + (f"\n\n{context}" if context else "")
                rec = {"prompt": prompt, "answer": rec["response"], **rec}
            split = {"user_oriented_instructions": "benchmark", "seed_tasks": "train"}.get(
                rec.get("source"), rec.get("split")
            )
            tasks.append(_task(str(rec.get("category") or "custom"), rec["prompt"].strip(),
                               str(rec["answer"]).strip(), bool(rec.get("checkable", False)),
                               split))  # fmt: skip
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{source}:{line_no}: not a sample task ({exc!r})") from None
    if not tasks:
        raise ValueError(f"{source} holds no tasks")
    return tuple(tasks)


def _interleaved(tasks: list[SampleTask]) -> list[SampleTask]:
    """Categories taken in turn, so any prefix covers every kind of task."""
    by_category: dict[str, list[SampleTask]] = {}
    for task in tasks:
        by_category.setdefault(task.category, []).append(task)
    queues = [by_category[c] for c in sorted(by_category)]
    ordered: list[SampleTask] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def training_tasks(path: str | Path | None = None) -> list[SampleTask]:
    """Tasks phones may upload feedback on (never in the benchmark), kinds interleaved."""
    return _interleaved([t for t in load_tasks(path) if t.split == "train"])


def benchmark_tasks(path: str | Path | None = None) -> list[SampleTask]:
    """The fixed benchmark (evaluation only), kinds interleaved."""
    return _interleaved([t for t in load_tasks(path) if t.split == "benchmark"])


def normalize_answer(text: str) -> str:
    """Lower case, first line only, outer punctuation and extra spaces removed."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"\s+", " ", first).strip(" .!\"'`").lower()


def exact_match(prediction: str, answer: str) -> bool:
    """The prediction's first line equals the answer, ignoring case and outer punctuation."""
    return normalize_answer(prediction) == normalize_answer(answer)


def answer_match(prediction: str, answer: str) -> bool:
    """The answer appears as whole words in the prediction's first line (case-insensitive).

    Lenient where exact match is strict: "The capital of Japan is Tokyo." answers "Tokyo".
    """
    wanted = normalize_answer(answer)
    if not wanted:
        return False
    pattern = r"(?<![\w.-])" + re.escape(wanted) + r"(?![\w-]|\.\d)"
    return re.search(pattern, normalize_answer(prediction)) is not None
