"""Readable eval-set names and the version history, from real SQLite and PostgreSQL rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.db import Database
from storage.models import Channel, DatasetSnapshot, Evaluation, ModelVersion
from tasks.evaluate.history import version_history
from tasks.evaluate.naming import SetIdentity, display_names, identify_sets
from tasks.evaluate.pipeline import link_candidate_evaluations

FP = ["1" * 64, "2" * 64, "3" * 64]
KEYS = [f"test:{fp}" for fp in FP]


def _world(db: Database) -> dict[str, int]:
    """Three snapshots; v1 published from the first, a rejected v2 from the second."""
    ids: dict[str, int] = {}
    with db.transaction(write=True) as session:
        snaps = [
            DatasetSnapshot(
                fingerprint=fp,
                watermark=i,
                code_version="t",
                path=f"/data/{fp}",
                created_at=datetime(2026, 11, 28 + i, 17, 45, tzinfo=UTC),
            )
            for i, fp in enumerate(FP)
        ]
        session.add_all(snaps)
        session.flush()
        rows = {
            "v1": ModelVersion(
                student="s", version=1, base_model="b", status="published", snapshot_id=snaps[0].id
            ),
            "v2": ModelVersion(
                student="s", version=2, base_model="b", status="rejected", snapshot_id=snaps[1].id
            ),
            "v3": ModelVersion(student="s", version=3, base_model="b", status="published"),
            "other": ModelVersion(
                student="o", version=1, base_model="b", status="published", snapshot_id=snaps[1].id
            ),
        }
        session.add_all(rows.values())
        session.flush()
        ids = {k: v.id for k, v in rows.items()} | {f"snap{i}": s.id for i, s in enumerate(snaps)}
    return ids


def test_sets_are_named_by_meaning(db: Database) -> None:
    ids = _world(db)
    keys = [KEYS[2], KEYS[0], KEYS[1], "fixed", "test:" + "9" * 64, "my-set"]
    with db.transaction() as session:
        names = display_names(identify_sets(session, keys, new_key=KEYS[2], student="s"))
    assert names == {
        KEYS[2]: f"new test split (snapshot {ids['snap2']}, 2026-11-30)",
        KEYS[0]: "earlier test split (v1)",  # the published version built on it
        # v2 was rejected, and o's v1 is another student's: known by its snapshot.
        KEYS[1]: f"earlier test split (snapshot {ids['snap1']}, 2026-11-29)",
        "fixed": "fixed benchmark",
        "test:" + "9" * 64: "earlier test split (snapshot 99999999)",  # gone from the database
        "my-set": "my-set",
    }
    assert not any("test:" in n for n in list(names.values())[:5])


def test_names_without_a_database_and_clashes() -> None:
    (ident,) = identify_sets(None, ["test:snap-2"], new_key="test:snap-2", student=None)
    assert ident.name == "new test split (snap-2)"
    plain = [SetIdentity("test:a", "earlier"), SetIdentity("test:b", "other", None)]
    twins = [SetIdentity("k1", "fixed"), SetIdentity("k2", "fixed")]
    assert display_names(twins) == {"k1": "fixed benchmark", "k2": "fixed benchmark #2"}
    assert display_names(plain)["test:b"] == "test:b"


def test_history_holds_published_versions_in_order_with_stable_marked(db: Database) -> None:
    ids = _world(db)
    with db.transaction(write=True) as session:
        for version, ppl, label in (
            ("v3", 7.0, "stable"),
            ("v1", 9.0, "live"),
            ("v1", 8.5, "stable"),
            ("v2", 1.0, "candidate"),
        ):
            session.add(
                Evaluation(
                    model_version_id=ids[version],
                    student="s",
                    label=label,
                    eval_set="fixed",
                    metrics={"perplexity": ppl, "note": "x"},
                )
            )
            session.flush()
        session.add(Evaluation(student="s", label="base", eval_set="fixed", metrics={}))
        session.add(Channel(student="s", name="stable", model_version_id=ids["v3"]))
    with db.transaction() as session:
        history = version_history(session, "s")
        pinned = version_history(session, "s", stable_version_id=ids["v1"])
    # Rejected v2 and the unversioned base are left out; v1 keeps its newest measurement.
    assert [(h.version, h.metrics, h.stable) for h in history] == [
        (1, {"perplexity": 8.5}, False),
        (3, {"perplexity": 7.0}, True),
    ]
    assert [h.stable for h in pinned] == [True, False]


def test_published_candidate_rows_join_the_history(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _world(db)
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", db.url.render_as_string(False))
    with db.transaction(write=True) as session:
        row = Evaluation(student="s", label="candidate", eval_set="fixed", metrics={"bleu": 3})
        session.add(row)
        session.flush()
        row_id = row.id
    with db.transaction() as session:
        assert version_history(session, "s") == []  # a candidate has no version yet
    assert link_candidate_evaluations([row_id], ids["v3"]) == 1
    with db.transaction() as session:
        (scores,) = version_history(session, "s")
    assert (scores.version, scores.eval_set, scores.metrics) == (3, "fixed", {"bleu": 3.0})
