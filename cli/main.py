"""The `distillery` command line: every command is declared in this file, from cli/commands/."""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence

import click
import typer

from cli.commands import (
    cycle,
    data,
    db,
    demo,
    devices,
    distill,
    evaluate,
    export,
    heal,
    memory,
    models,
    preflight,
    prepare,
    quality,
    rollout,
    serve,
    settings,
    simulate,
)
from cli.commands.settings import GROUPS, warn_misspelled
from cli.errors import explain, show_tracebacks
from storage.config import InvalidSettings, Settings

app = typer.Typer(
    name="distillery",
    help=(
        "Keep the small language models on your users' phones getting better: collect their "
        "ratings and corrections, distill a larger teacher into the phone models, check each "
        "new version against the one in use, and publish the winners as GGUF files phones "
        "download.\n\nStart with `distillery demo`. Settings come from DISTILLERY_* environment "
        "variables (see the README); DISTILLERY_DEBUG=1 shows tracebacks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@app.callback()
def _read_settings(ctx: typer.Context) -> None:
    # Every command runs under one Settings read here, so a bad DISTILLERY_ value stops the
    # command before any work; `distillery settings` reads them itself, to show them all.
    if ctx.resilient_parsing or ctx.invoked_subcommand == "settings":
        return
    warn_misspelled()
    ctx.with_resource(Settings.read(*GROUPS.values()).active())


# The loop, in the order a newcomer meets it.
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("simulate")(simulate.simulate)
app.command("prepare")(prepare.prepare)
app.command("preflight")(preflight.preflight)
app.command("memory")(memory.memory)
app.command("heal")(heal.heal)
app.command("distill")(distill.distill)
app.add_typer(evaluate.app, name="evaluate")
app.command("export")(export.export)
app.command("cycle")(cycle.cycle)
app.command("teacher-finetune")(cycle.teacher_finetune)
# Operating the registry and the store.
app.add_typer(models.app, name="models")
app.command("rollback")(models.rollback)
app.command("quality")(quality.quality)
app.add_typer(rollout.app, name="rollout")
app.add_typer(devices.app, name="devices")
app.add_typer(data.app, name="data")
app.add_typer(db.app, name="db")
app.command("settings")(settings.settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures end with ✗ and one line, exit status 2."""
    # Libraries' notices about their own future APIs are for us, not for the person running it.
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        args = list(argv) if argv is not None else None
        result = app(args=args, prog_name="distillery", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as exit_:
        return int(exit_.exit_code or 0)
    except (click.exceptions.Abort, typer.Abort):
        print("✗ aborted", file=sys.stderr)
        return 130
    # Usage errors: click's own (from click.Choice) and the click that typer vendors.
    except (click.ClickException, typer.exceptions.TyperException) as exc:
        exc.show()  # type: ignore[union-attr]
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # noqa: BLE001 - bugs are re-raised below with their traceback
        message = explain(exc)
        if message is None:
            raise
        # A settings error names every bad variable already; its traceback would add nothing.
        if not isinstance(exc, InvalidSettings) and show_tracebacks():
            traceback.print_exc()
        print(f"✗ {message}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
