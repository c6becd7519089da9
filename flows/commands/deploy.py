"""`distillery deploy [--all | -n NAME]`: `prefect deploy` with a client fix applied.

prefect 3.8.8's `prefect deploy` asks the server for the pool's online workers with
`limit: null, offset: null`; under fastapi 0.154 the server answers 422 and the command
stops after the first deployment. This sends concrete values, then runs prefect's own CLI.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def patch_prefect_client() -> None:
    """Make `read_workers_for_work_pool` send integers instead of nulls (idempotent)."""
    from prefect.client.orchestration._work_pools.client import (
        WorkPoolAsyncClient,
        WorkPoolClient,
    )

    if getattr(WorkPoolAsyncClient.read_workers_for_work_pool, "_distillery", False):
        return
    read_async = WorkPoolAsyncClient.read_workers_for_work_pool
    read_sync = WorkPoolClient.read_workers_for_work_pool

    async def read_workers_async(
        self: Any, name: str, worker_filter: Any = None, offset: Any = None, limit: Any = None
    ) -> Any:  # noqa: E501
        return await read_async(self, name, worker_filter, offset or 0, limit or 200)

    def read_workers_sync(
        self: Any, name: str, worker_filter: Any = None, offset: Any = None, limit: Any = None
    ) -> Any:  # noqa: E501
        return read_sync(self, name, worker_filter, offset or 0, limit or 200)

    read_workers_async._distillery = True  # type: ignore[attr-defined]
    WorkPoolAsyncClient.read_workers_for_work_pool = read_workers_async  # type: ignore[method-assign]
    WorkPoolClient.read_workers_for_work_pool = read_workers_sync  # type: ignore[method-assign]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `deploy` command."""
    parser = subparsers.add_parser(
        "deploy",
        help="register prefect.yaml's deployments (prefect deploy, with a client fix)",
        description=__doc__,
    )
    parser.add_argument("--all", action="store_true", help="every deployment (the default)")
    parser.add_argument("-n", "--name", action="append", default=[], help="one deployment")
    parser.add_argument("--prefect-file", default="prefect.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `prefect deploy` in this process with the fix applied."""
    patch_prefect_client()
    from prefect.cli import app

    names = [part for name in args.name for part in ("--name", name)]
    sys.argv = ["prefect", "deploy", *(names or ["--all"]), "--prefect-file", args.prefect_file]
    try:
        app()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
