"""`distillery models list|history` and `distillery rollback`: versions, channels, audit trail."""

from __future__ import annotations

import getpass
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer

from cli.errors import UserError
from storage.config import StorageSettings
from storage.db import Database, get_database
from storage.registry import RegistryError, channels

app = typer.Typer(help="Published model versions, their channels and audit trail.")


@app.command("list")
def list_versions(
    student: Annotated[str | None, typer.Option(help="only this student [all]")] = None,
    details: Annotated[
        bool, typer.Option(help="also memory per quantization, variants and PEFT config")
    ] = False,
) -> int:
    """Every version with status, channels, sizes (merged file, adapter) and memory to run."""
    versions = channels.list_versions(_database(), student)
    rows = [
        [
            v.student,
            str(v.version),
            v.status,
            ",".join(v.channels) or "-",
            str(v.files),
            _size(v.size),
            v.agent or "-",
            _size(v.role_sizes["adapter"]) if "adapter" in v.role_sizes else "-",
            memory_cell(v.run_metadata),
            v.base_model,
            _when(v.published_at),
        ]
        for v in versions
    ]
    header = ["STUDENT", "VERSION", "STATUS", "CHANNELS", "FILES", "SIZE", "AGENT", "ADAPTER",
              "MEMORY Q4_K_M", "BASE MODEL", "PUBLISHED"]  # fmt: skip
    print(table(header, rows) if rows else "no model versions yet")
    if details:
        for v in versions:
            if v.run_metadata:
                print(f"\n{v.student} v{v.version}:\n" + runtime_lines(v.run_metadata))
    return 0


def memory_cell(runtime: dict[str, Any]) -> str:
    """Approximate memory to run base + adapter at Q4_K_M, '-' when not recorded."""
    q4 = (runtime.get("memory") or {}).get("Q4_K_M")
    return f"~{_size(int(q4['total_bytes']))}" if q4 else "-"


def runtime_lines(runtime: dict[str, Any]) -> str:
    """Memory per quantization, the variants and the PEFT config as indented lines."""
    lines = [f"  memory to run (n_ctx {runtime.get('n_ctx')}, approximate):"]
    for quant, m in (runtime.get("memory") or {}).items():
        how = "file" if m.get("weights_measured") else "estimated"
        total, weights = _size(int(m["total_bytes"])), _size(int(m["weights_bytes"]))
        lines.append(
            f"    {quant:7} ~{total} (weights {weights} {how}, adapter "
            f"{_size(int(m['adapter_bytes']))}, KV cache {_size(int(m['kv_cache_bytes']))})"
        )
    variants = ", ".join(
        f"{v['role']} {v.get('quantization') or '?'} {_size(int(v.get('size') or 0))}"
        for v in runtime.get("variants") or []
    )
    lines.append(f"  variants: {variants or '-'}")
    if runtime.get("peft"):
        lines.append("  peft: " + json.dumps(runtime["peft"], sort_keys=True))
    return "\n".join(lines)


@app.command()
def history(
    student: Annotated[str, typer.Argument(help="student preset name")],
    channel: Annotated[str | None, typer.Option(help="only this channel [all]")] = None,
) -> int:
    """Promotions and rollbacks of one student, oldest first."""
    entries = channels.history(_database(), student, channel=channel)
    rows = [
        [
            _when(e.at),
            e.channel,
            e.action,
            "-" if e.from_version is None else f"v{e.from_version}",
            f"v{e.to_version}",
            e.actor,
            e.reason,
        ]
        for e in entries
    ]
    header = ["WHEN (UTC)", "CHANNEL", "ACTION", "FROM", "TO", "ACTOR", "REASON"]
    print(table(header, rows) if rows else f"no promotions or rollbacks of {student}")
    return 0


def rollback(
    student: Annotated[str, typer.Argument(help="student preset name")],
    to: Annotated[
        int | None,
        typer.Option(metavar="VERSION", help="a published version [the previous stable]"),
    ] = None,
    reason: Annotated[str, typer.Option(help="why, kept in the audit trail")] = "",
    channel: Annotated[str, typer.Option(help="the channel to move")] = "stable",
    actor: Annotated[str | None, typer.Option(help="who [the login name]")] = None,
) -> int:
    """Move a student's channel back to an earlier published version (phones follow)."""
    try:
        moved = channels.rollback(
            _database(),
            student,
            to_version=to,
            channel=channel,
            reason=reason,
            actor=actor or _login(),
        )
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    if not moved.moved:
        print(f"{moved.student} {moved.channel} already points at v{moved.to_version}")
    else:
        print(f"✓ {moved.student} {moved.channel}: v{moved.from_version} -> v{moved.to_version}")
    return 0


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _database() -> Database:
    return get_database(StorageSettings.read())


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
