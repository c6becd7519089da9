"""`distillery serve`: run the phone-facing HTTP service under uvicorn."""

from __future__ import annotations

from typing import Annotated

import click
import typer


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0: all)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    log_level: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(["critical", "error", "warning", "info", "debug"]),
            metavar="LEVEL",
            help="critical, error, warning, info or debug",
        ),
    ] = "info",
) -> int:
    """Serve the phone-facing API (feedback uploads, the model manifest, downloads).

    Settings and the database come from the environment (DISTILLERY_*); the API's
    documentation is at /api/docs once it runs.
    """
    import socket

    import uvicorn  # imported here so other commands do not pay for it

    from cli.errors import UserError

    with socket.socket() as probe:  # uvicorn would log a traceback and exit 1
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): use --port") from exc
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
    )
    return 0
