"""A device erases its own data: DELETE /api/devices/me/data, then GET /api/erasures/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.http import ApiError, documented, json_response
from serving.state import service
from storage.models import Erasure
from storage.repo.erasure import ErasureScope, erase_rows, get_erasure

router = APIRouter(prefix="/api", tags=["privacy"])
bearer = HTTPBearer(auto_error=False, description="`<device_id>.<secret>` from POST /api/devices")


class ErasureOut(BaseModel):
    """An erasure of a device's data and how far it got."""

    erasure_id: str
    status: Literal["pending", "done"] = Field(
        description="pending: the rows are gone from the database, copies in dataset "
        "snapshots and caches are being removed; done: those too"
    )
    requested_at: datetime
    finished_at: datetime | None
    interactions: int = Field(description="interactions erased (phone answers and chat turns)")
    revisions: int = Field(description="earlier ratings and corrections erased with them")
    snapshot_rows: int | None = Field(
        None, description="copies removed from dataset snapshots (known once done)"
    )
    cache_entries: int | None = Field(
        None, description="teacher signals forgotten (known once done)"
    )
    status_url: str


def _out(erasure: Erasure) -> dict[str, object]:
    counts = erasure.counts or {}
    return {
        "erasure_id": erasure.id,
        "status": erasure.status,
        "requested_at": erasure.requested_at,
        "finished_at": erasure.finished_at,
        "interactions": counts.get("interactions", 0),
        "revisions": counts.get("revisions", 0),
        "snapshot_rows": counts.get("snapshot_rows"),
        "cache_entries": counts.get("cache_entries"),
        "status_url": f"/api/erasures/{erasure.id}",
    }


@router.delete(
    "/devices/me/data",
    status_code=202,
    response_model=ErasureOut,
    responses=documented(401, 403, 429),
)
async def erase_my_data(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Response:
    """Erase everything this device uploaded or chatted: answered once the rows are gone.

    Copies in dataset snapshots and teacher caches are removed next; follow `status_url`
    until `status` is `done`. Ids erased here are never stored again if re-sent.
    """
    state = service(request)
    device_id, _ = await state.auth.device_of(request.headers.get("authorization"))
    state.limits.hit(state.limits.upload, "device", device_id)

    def erase() -> dict[str, object]:
        with state.database.transaction(write=True) as session:
            erasure = erase_rows(
                session=session,
                scope=ErasureScope(device_id=device_id),
                actor=f"device:{device_id}",
                reason="asked for by the device",
            )
            return _out(erasure)

    return json_response(await run_in_threadpool(erase), 202)


@router.get(
    "/erasures/{erasure_id}", response_model=ErasureOut, responses=documented(401, 403, 404, 422)
)
async def erasure_status(
    request: Request,
    erasure_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Response:
    """Progress of one of this device's erasures (another device's answers 404)."""
    state = service(request)
    device_id, _ = await state.auth.device_of(request.headers.get("authorization"))

    def load() -> dict[str, object] | None:
        with state.database.transaction() as session:
            erasure = get_erasure(session=session, erasure_id=erasure_id)
            if erasure is None or erasure.device_id != device_id:
                return None
            return _out(erasure)

    found = await run_in_threadpool(load)
    if found is None:
        raise ApiError(404, f"no erasure {erasure_id} of this device", reason="not_found")
    return json_response(found)
