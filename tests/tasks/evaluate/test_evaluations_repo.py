"""storage/repo/evaluations.py on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from storage.db import Database
from storage.models import ModelVersion
from storage.repo import evaluations as repo


def _version(db: Database, version: int, status: str = "pending") -> int:
    with db.transaction(write=True) as session:
        row = ModelVersion(student="tiny", version=version, base_model="local/tiny", status=status)
        session.add(row)
        session.flush()
        return row.id


def test_add_list_and_history(db: Database) -> None:
    v1 = _version(db, 1, "published")
    with db.transaction(write=True) as session:
        repo.add_evaluation(
            session=session,
            student="tiny",
            label="stable",
            eval_set="fixed",
            metrics={"perplexity": 9.0},
            model_version_id=v1,
        )
        repo.add_evaluation(
            session=session, student="tiny", label="base", eval_set="fixed", metrics={"x": 1}
        )
        repo.add_evaluation(
            session=session, student="other", label="base", eval_set="fixed", metrics={}
        )
    with db.transaction() as session:
        rows = repo.list_evaluations(session=session, student="tiny")
        assert [r.label for r in rows] == ["stable", "base"]
        assert repo.list_evaluations(session=session, student="tiny", label="base")[0].metrics == {
            "x": 1
        }
        history = repo.metrics_history(session=session, student="tiny")
        assert [(h["version"], h["label"]) for h in history] == [(1, "stable"), (None, "base")]
        assert history[0]["metrics"] == {"perplexity": 9.0}
        assert [v.version for v in repo.live_versions(session=session)] == [1]


def test_gate_is_kept_with_the_version_and_rejection_marks_it(db: Database) -> None:
    v2 = _version(db, 2)
    decision = {"promote": False, "reasons": ["reject: 1 of 4 checks failed"], "checks": []}
    with db.transaction(write=True) as session:
        ev = repo.add_evaluation(
            session=session, student="tiny", label="candidate", eval_set="fixed", metrics={}
        )
        assert repo.link_evaluations(session=session, evaluation_ids=[ev.id], model_version_id=v2)
        repo.record_gate(
            session=session, model_version_id=v2, decision=decision, metrics={"fixed": {}}
        )
    with db.transaction() as session:
        row = session.get(ModelVersion, v2)
        assert row is not None
        assert row.gate == decision and row.status == "rejected" and row.metrics == {"fixed": {}}
        assert repo.list_evaluations(session=session, student="tiny", model_version_id=v2)


def test_bad_input_is_named(db: Database) -> None:
    with db.transaction(write=True) as session:
        with pytest.raises(ValueError, match="label must be one of"):
            repo.add_evaluation(session=session, student="t", label="x", eval_set="s", metrics={})
        with pytest.raises(LookupError, match="model version 999"):
            repo.record_gate(session=session, model_version_id=999, decision={"promote": True})
        with pytest.raises(LookupError, match="model version 999"):
            repo.add_evaluation(
                session=session,
                student="t",
                label="base",
                eval_set="s",
                metrics={},
                model_version_id=999,
            )


def test_repository_never_commits(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as session:
        repo.add_evaluation(session=session, student="t", label="base", eval_set="s", metrics={})
        raise RuntimeError("caller aborts")
    with db.transaction() as session:
        assert repo.list_evaluations(session=session, student="t") == []
