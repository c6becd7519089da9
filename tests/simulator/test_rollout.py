"""The rollout round's deck: each version's outcomes in the simulator's mix, the canary's
moved from good to bad by the happiness drop, the same deck for the same seed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from simulator.phones import OUTCOME_MIX
from simulator.rollout import RolloutRoundConfig, outcome_deck


@pytest.mark.parametrize("n", [1, 7, 25, 100, 1000])
def test_a_deck_holds_the_mix_to_within_a_card_per_rating(n: int) -> None:
    deck = outcome_deck(n, 0.0, random.Random(0))
    assert len(deck) == n
    kinds = Counter(kind for kind, _ in deck)
    for kind, share in OUTCOME_MIX:
        assert abs(kinds[kind] - share * n) <= 2, (kind, kinds)  # two ratings: two remainders
    ratings = {kind: {r for k, r in deck if k == kind} for kind in kinds}
    assert ratings.get("good", {4, 5}) <= {4, 5} and ratings.get("mediocre", {3}) == {3}
    assert ratings.get("unrated", {None}) == {None}


def test_the_drop_moves_good_answers_to_bad_ones() -> None:
    same = Counter(outcome_deck(1000, 0.0, random.Random(1)))
    worse = Counter(outcome_deck(1000, 0.15, random.Random(1)))
    good = sum(n for (k, _), n in same.items() if k == "good")
    assert good - sum(n for (k, _), n in worse.items() if k == "good") == 150
    for kind in ("corrected", "mediocre", "unrated"):
        assert sum(n for (k, _), n in same.items() if k == kind) == sum(
            n for (k, _), n in worse.items() if k == kind
        )
    mean = {  # over rated answers: about 0.53 points lower
        name: sum(r * n for (_, r), n in deck.items() if r) / sum(
            n for (_, r), n in deck.items() if r
        )
        for name, deck in (("same", same), ("worse", worse))
    }  # fmt: skip
    assert mean["same"] - mean["worse"] == pytest.approx(0.45 / 0.85, abs=0.01)


def test_the_same_seed_deals_the_same_deck_and_bad_settings_are_refused() -> None:
    assert outcome_deck(50, 0.1, random.Random("7")) == outcome_deck(50, 0.1, random.Random("7"))
    assert outcome_deck(50, 0.1, random.Random("7")) != outcome_deck(50, 0.1, random.Random("8"))
    with pytest.raises(ValueError, match="happiness_drop"):
        RolloutRoundConfig(student="smol", happiness_drop=0.5).check()
    with pytest.raises(ValueError, match="max_phones"):
        RolloutRoundConfig(student="smol", phones=50, max_phones=10).check()
