"""The command line as a person meets it: help with defaults and choices, one-line failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m cli ARGS` in a fresh process, as a user runs `distillery ARGS`."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_top_level_help_says_what_it_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "phones" in out and "distillery demo" in out
    for command in ("demo", "serve", "prepare", "heal", "distill", "evaluate", "cycle"):
        assert f"  {command} " in out


def test_subcommand_help_lists_defaults_and_preset_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cycle", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # unwrap the help columns
    assert "[default: smollm2-135m-instruct]" in out
    assert "choices: llama-3.2-1b-instruct, phi-3-mini-4k-instruct" in out
    assert "choices: PHONE, F16, Q8_0" in out and "[default: 8; x>=0]" in out


def test_heal_help_names_its_presets_and_an_unknown_one_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["heal", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "choices: smollm2-healed-student" in out and "logit KD" in out
    # A student that is not a healed preset is refused before anything is trained.
    assert main(["heal", "smollm2-pruned-student"]) == 2
    err = capsys.readouterr().err
    assert "'smollm2-pruned-student' is not" in err and "smollm2-healed-student" in err


def test_an_unknown_preset_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "--snapshot", str(REPO), "--student", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "'no-such-model' is not one of" in err and "smollm2-pruned-student" in err


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DISTILLERY_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{port}/x",
    }
    done = _run("models", "list", env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("✗ cannot use the database:") and "Connection refused" in lines[0]
    assert len(lines) == 2 and "DISTILLERY_DATABASE_URL" in lines[1]
    assert "Traceback" not in done.stderr


def test_a_busy_port_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        done = _run("serve", "--port", str(sock.getsockname()[1]))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("✗ cannot listen on 127.0.0.1:")
    assert "use --port" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_snapshot_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "--snapshot", "/nonexistent/snap"]) == 2
    assert "'/nonexistent/snap' does not exist" in capsys.readouterr().err
