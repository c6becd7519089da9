"""Expected failures said in one line with what to do; anything else keeps its traceback."""

from __future__ import annotations

import errno

DEBUG_ENV = "DISTILLERY_DEBUG"


class UserError(Exception):
    """A failure the user can fix (bad option, missing file, no data): message, no traceback."""


def explain(exc: BaseException) -> str | None:
    """One or two lines for an expected failure, None for a bug (which keeps its traceback)."""
    from sqlalchemy.exc import OperationalError

    from storage.config import InvalidSettings

    if isinstance(exc, UserError | InvalidSettings):
        return str(exc)
    from pydantic import ValidationError

    from tasks.config import CONFIG_ROOTS, ConfigError

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, ValidationError) and exc.title in CONFIG_ROOTS:
        from tasks.config_base import config_error

        return config_error(exc, CONFIG_ROOTS[exc.title], exc.title)
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:3]
        )
        return f"invalid {exc.title}: {problems}"
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        return (
            f"cannot use the database: {reason}\n"
            "  start the database server, or point DISTILLERY_DATABASE_URL at one that answers"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{exc.strerror or exc}: the port is taken; choose another with --port"
    if isinstance(exc, FileNotFoundError):
        return str(exc)
    from tasks.models.memory_plan import MemoryPlanError

    if isinstance(exc, MemoryPlanError):
        return str(exc)
    from tasks.models.presets import UnknownPresetError

    if isinstance(exc, UnknownPresetError):
        return str(exc.args[0])
    return None


def show_tracebacks() -> bool:
    """True when $DISTILLERY_DEBUG asks for full tracebacks of expected failures too."""
    from pydantic import ValidationError

    from tasks.settings import PipelineSettings

    try:
        return PipelineSettings.read().debug
    except ValidationError:  # DISTILLERY_DEBUG=2 and the like: asked for, so shown
        return True
