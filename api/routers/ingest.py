"""Upload of sample blocks by a collector (device bearer token)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentDevice, DbSession, SettingsDep
from api.errors import Invalid, TooLarge
from api.schemas import IngestRequest, IngestResponse
from api.services import ingest

router = APIRouter(tags=["ingest"])


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) before reading when Content-Length is over ``limit``
    and while reading when the streamed length goes over it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise Invalid("Content-Length is not an integer") from exc
        if size > limit:
            raise TooLarge(f"request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise TooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_ingest(body: bytes) -> IngestRequest:
    """Parse and validate an ingest body.

    Raises:
        Invalid: malformed JSON (NaN/Infinity literals included) or a schema violation.
    """
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"malformed JSON: {exc}") from exc
    try:
        return IngestRequest.model_validate(payload)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise Invalid(f"invalid ingest request: {reasons}") from exc


@router.post(
    "/ingest",
    response_model=IngestResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": IngestRequest.model_json_schema()}},
        }
    },
    responses={401: {}, 409: {}, 413: {}, 422: {}},
)
async def ingest_blocks(
    request: Request, device: CurrentDevice, db: DbSession, settings: SettingsDep
) -> IngestResponse:
    """Store blocks, events and status for the caller's patient; idempotent on (device, stream,
    seq) for blocks and (device, id) for events; the latest status wins."""
    body = await read_limited_body(request, settings.max_body_bytes)
    parsed = parse_ingest(body)
    # Sync DB work runs in the threadpool so the event loop stays free.
    def _store() -> IngestResponse:
        try:
            response = ingest.store(
                db, device=device, request=parsed, max_block_samples=settings.max_block_samples
            )
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return response

    return await run_in_threadpool(_store)
