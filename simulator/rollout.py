"""A rollout round: a fleet of phones asks the manifest what to run and rates what it got.

Each phone registers, polls `GET /api/models/mobile/latest` with its device id (a device in
a running rollout's cohort is served the canary version, the others stable), then uploads
interactions tagged with the student and version it was served. Users of the canary are a
little less happy: `happiness_drop` of their answers that would have been good (rated 4-5)
are bad instead (rated 1-2).

The outcomes of each served version are dealt from a shuffled deck with the mix of
`simulator.phones.OUTCOME_MIX`, not drawn one by one: which phones fall in a 10 % cohort
is up to the service's device ids, and with independent draws the luck of that split
alone would make a same-quality canary look clearly worse about one time in twenty. Dealt,
the cohorts differ by the configured drop and nothing else, while the ratings keep their
real spread, which is what the watcher's intervals measure. Everything else (prompts,
degraded answers, interaction ids) is drawn from the seed, per phone.

A cohort can hold few phones (10 % of 40 phones is none at all one time in 70), so more
phones come online until `min_cohort_phones` were served the canary, as a fleet's would
over the hours a watcher waits, up to `max_phones`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from simulator.phones import (
    OUTCOME_MIX,
    Outcome,
    TaskPool,
    expect_status,
    load_seed_tasks,
    make_interaction,
)

LATEST = "/api/models/mobile/latest"
CANARY = "canary"
_CONCURRENT = 16  # requests in flight at once, as many phones coming online together


@dataclass(frozen=True)
class RolloutRoundConfig:
    """The fleet of a rollout round and how much less its canary's users like the answers."""

    student: str
    phones: int = 40
    per_phone: int = 25  # interactions each phone uploads (one upload)
    happiness_drop: float = 0.15  # share of a canary's answers moved from good to bad
    min_cohort_phones: int = 4  # phones join until this many were served the canary ...
    max_phones: int = 160  # ... up to this many in all
    seed: int = 0
    pii_rate: float = 0.05
    records: Path | None = None  # a JSONL of tasks; None: the built-in sample tasks

    def check(self) -> None:
        """ValueError for settings no round can run with."""
        good = dict(OUTCOME_MIX)["good"]
        if not 0 <= self.happiness_drop <= good:
            raise ValueError(f"happiness_drop must be in [0, {good}] (the good share)")
        if self.phones < 1 or self.per_phone < 1 or self.max_phones < self.phones:
            raise ValueError("need phones >= 1, per_phone >= 1 and max_phones >= phones")
        if self.min_cohort_phones < 0:
            raise ValueError("min_cohort_phones must be >= 0")


@dataclass
class CohortReport:
    """What the phones served one version sent, and what the service answered."""

    version: int
    channel: str  # "stable" or "canary", as the manifest said
    phones: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    ratings: list[int] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def mean_rating(self) -> float | None:
        """The mean of the ratings sent (None when none was rated)."""
        return sum(self.ratings) / len(self.ratings) if self.ratings else None

    def line(self, student: str) -> str:
        """`smol v2 (canary): 4 phones, 100 interactions (100 new), mean rating 2.38`."""
        mean = self.mean_rating
        rating = f", mean rating {mean:.2f}" if mean is not None else ""
        return (
            f"{student} v{self.version} ({self.channel}): {self.phones} phones, {self.sent} "
            f"interactions ({self.accepted} new){rating}"
        )


@dataclass
class RolloutRoundReport:
    """Per served version, the phones and their feedback; which device got which."""

    student: str
    cohorts: dict[str, CohortReport] = field(default_factory=dict)  # by channel
    served: dict[str, str] = field(default_factory=dict)  # device id -> channel
    unserved: int = 0  # phones whose manifest listed no version of the student

    @property
    def canary(self) -> CohortReport | None:
        """The canary's cohort, if any phone was served one."""
        return self.cohorts.get(CANARY)


@dataclass
class _Phone:
    index: int
    device_id: str
    headers: dict[str, str]
    version: int | None = None
    channel: str | None = None


def outcome_deck(n: int, drop: float, rng: random.Random) -> list[Outcome]:
    """`n` outcomes with OUTCOME_MIX's shares, `drop` of them moved from good to bad, each
    share split evenly over its ratings; counts by largest remainder, then shuffled."""
    shares = dict(OUTCOME_MIX)
    shares["good"] -= drop
    shares["bad"] += drop
    ratings: dict[str, tuple[int | None, ...]] = {
        "good": (4, 5),
        "corrected": (1, 2),
        "bad": (1, 2),
        "mediocre": (3,),
        "unrated": (None,),
    }
    cells = [
        ((kind, r), shares[kind] / len(ratings[kind]))
        for kind, _ in OUTCOME_MIX
        for r in ratings[kind]
    ]
    exact = [share * n for _, share in cells]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(cells)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    deck = [cell for (cell, _), count in zip(cells, counts, strict=True) for _ in range(count)]
    rng.shuffle(deck)
    return deck


async def rollout_round(
    client: httpx.AsyncClient, config: RolloutRoundConfig
) -> RolloutRoundReport:
    """Phones register and poll the manifest (more join until the canary's cohort holds
    `min_cohort_phones`, or `max_phones` joined), then each uploads what its users did."""
    config.check()
    pool = TaskPool(load_seed_tasks(config.records))
    gate = asyncio.Semaphore(_CONCURRENT)
    phones: list[_Phone] = []

    async def join(count: int) -> None:
        first = len(phones)
        joined = await asyncio.gather(
            *(_come_online(client, config, first + i, gate) for i in range(count))
        )
        phones.extend(joined)

    await join(config.phones)
    wave = max(1, config.phones // 4)
    while (
        sum(p.channel == CANARY for p in phones) < config.min_cohort_phones
        and len(phones) < config.max_phones
    ):
        await join(min(wave, config.max_phones - len(phones)))

    report = RolloutRoundReport(student=config.student)
    served = [p for p in phones if p.version is not None]
    report.unserved = len(phones) - len(served)
    if not served:
        raise RuntimeError(
            f"the manifest lists no version of {config.student} for any phone: publish one first"
        )
    uploads = []
    for channel in sorted({str(p.channel) for p in served}):
        group = [p for p in served if p.channel == channel]
        drop = config.happiness_drop if channel == CANARY else 0.0
        deck = outcome_deck(
            len(group) * config.per_phone, drop, random.Random(f"{config.seed}:deck:{channel}")
        )
        version = group[0].version
        assert version is not None  # served
        cohort = CohortReport(version=version, channel=channel)
        report.cohorts[channel] = cohort
        for k, phone in enumerate(group):
            report.served[phone.device_id] = channel
            dealt = deck[k * config.per_phone : (k + 1) * config.per_phone]
            uploads.append(_upload(client, config, pool, phone, dealt, cohort, gate))
    await asyncio.gather(*uploads)
    return report


async def _come_online(
    client: httpx.AsyncClient, config: RolloutRoundConfig, index: int, gate: asyncio.Semaphore
) -> _Phone:
    """Register, then ask the manifest which version of the student to run."""
    async with gate:
        platform = "android" if index % 2 == 0 else "ios"
        reg = await _post_retrying(
            client, "/api/devices", {"platform": platform, "app_version": "1.2.0"}
        )
        expect_status(reg, 201, "device registration")
        body = reg.json()
        phone = _Phone(index, body["device_id"], {"Authorization": f"Bearer {body['token']}"})
        got = await client.get(
            LATEST, params={"student": config.student, "device_id": phone.device_id}
        )
        expect_status(got, 200, "manifest poll")
        for entry in got.json()["models"]:
            if entry["student"] == config.student:
                phone.version, phone.channel = int(entry["version"]), str(entry["channel"])
        return phone


async def _post_retrying(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], tries: int = 3
) -> httpx.Response:
    """POST, waiting out a 429 as a phone would (its Retry-After, at most a minute)."""
    for _ in range(tries - 1):
        answer = await client.post(path, json=body)
        if answer.status_code != 429:
            return answer
        await asyncio.sleep(min(60.0, float(answer.headers.get("retry-after", "1"))))
    return await client.post(path, json=body)


async def _upload(
    client: httpx.AsyncClient,
    config: RolloutRoundConfig,
    pool: TaskPool,
    phone: _Phone,
    dealt: list[Outcome],
    cohort: CohortReport,
    gate: asyncio.Semaphore,
) -> None:
    """One upload of the phone's interactions, tagged with the version it was served."""
    rng = random.Random(f"{config.seed}:rollout:{phone.index}")
    model = (config.student, str(phone.version))
    now = datetime.now(UTC)
    batch = []
    for k, outcome in enumerate(dealt):
        created = now - timedelta(minutes=len(dealt) - k)
        item, kind = make_interaction(
            pool.draw(rng), rng, model, created, config.pii_rate, outcome=outcome
        )
        batch.append(item)
        cohort.outcomes[kind] = cohort.outcomes.get(kind, 0) + 1
        if item.get("rating") is not None:
            cohort.ratings.append(int(item["rating"]))
    body = {"device_id": phone.device_id, "timestamp": now.isoformat(), "interactions": batch}
    async with gate:
        answer = await client.post("/api/training/feedback", json=body, headers=phone.headers)
    expect_status(answer, 200, "feedback upload")
    cohort.phones += 1
    cohort.sent += len(batch)
    cohort.accepted += answer.json()["accepted"]
    cohort.duplicates += answer.json()["duplicates"]


def run_rollout_round(
    url: str, config: RolloutRoundConfig, *, timeout: float = 30.0
) -> RolloutRoundReport:
    """A rollout round against a running service at `url`."""

    async def main() -> RolloutRoundReport:
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            return await rollout_round(client, config)

    return asyncio.run(main())
