"""The HTTP face's boundary, where exceptions become statuses with an :class:`ErrorBody`.

One table, :data:`HTTP_STATUS`, maps the service's status codes (``expound.errors``) to HTTP
statuses, as ``google.rpc.Code`` documents its HTTP mapping; every :class:`ServiceError`
subclass reaches a caller through its code, the same code the gRPC boundary
(:mod:`expound.server.errors`) sends. Request validation failures are INVALID_ARGUMENT (400)
with one field violation per offending field; anything unexpected is 500 with the fixed
message and the request id, its traceback logged here and never sent.

Bodies are bounded like the gRPC trailer (the same byte limits, from
:mod:`expound.server.errors`): messages may quote what a caller sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from expound.errors import FieldViolation, InvalidRequest, ServiceError, StatusCode
from expound.server.errors import (
    INTERNAL_MESSAGE,
    MAX_DESCRIPTION_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_VIOLATIONS,
    cut_field,
    cut_utf8,
    log_service_error,
)
from expound.web.schemas import ErrorBody, FieldViolationBody

log = logging.getLogger("expound.web")

HTTP_STATUS: dict[StatusCode, int] = {
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.FAILED_PRECONDITION: 400,
    StatusCode.UNAUTHENTICATED: 401,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
}
"""HTTP status per service status code (google.rpc.Code's documented HTTP mapping)."""

# What every guarded endpoint may answer: bad input, no credential, a refused role, a
# store that cannot answer, and the unexpected.
COMMON: tuple[StatusCode, ...] = (
    StatusCode.INVALID_ARGUMENT,
    StatusCode.UNAUTHENTICATED,
    StatusCode.PERMISSION_DENIED,
    StatusCode.INTERNAL,
    StatusCode.UNAVAILABLE,
)

_DESCRIPTIONS = {
    400: "Invalid request (field violations name each offending field), or a failed precondition",
    401: "No valid credential (send `Authorization: Bearer <token>`)",
    403: "The caller's roles do not allow this call",
    404: "Not found",
    409: "Already exists (an idempotency key reused with another request)",
    429: "Shed at admission: retry after `retry_after_s` (also the Retry-After header)",
    500: "Internal error: a fixed message and the request id, never a traceback",
    503: "A backend (the archive) cannot answer now",
}


def documented(*codes: StatusCode) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an endpoint that may fail with ``codes`` (and COMMON)."""
    statuses = sorted({HTTP_STATUS[code] for code in (*COMMON, *codes)})
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


def _bounded(violations: Sequence[FieldViolation]) -> list[FieldViolationBody]:
    listed = [
        FieldViolationBody(
            field=cut_field(violation.field),
            description=cut_utf8(violation.description, MAX_DESCRIPTION_BYTES),
        )
        for violation in violations[:MAX_VIOLATIONS]
    ]
    if len(violations) > MAX_VIOLATIONS:
        listed.append(
            FieldViolationBody(
                field=listed[-1].field, description=f"and {len(violations) - MAX_VIOLATIONS} more"
            )
        )
    return listed


def request_id_of(request: Request) -> str:
    """The request id the middleware gave this request."""
    return str(getattr(request.state, "request_id", ""))


def error_response(error: ServiceError, request_id: str) -> JSONResponse:
    """The answer to ``error``: its HTTP status and :class:`ErrorBody`."""
    status = HTTP_STATUS[error.code]
    body = ErrorBody(
        code=error.code.name,
        message=cut_utf8(error.message, MAX_MESSAGE_BYTES),
        field_violations=_bounded(error.violations) if isinstance(error, InvalidRequest) else [],
        request_id=request_id,
        retry_after_s=error.retry_after_s,
    )
    headers = {"x-request-id": request_id}
    if error.retry_after_s is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after_s)))
    if error.code is StatusCode.UNAUTHENTICATED:
        headers["www-authenticate"] = "Bearer"
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def internal_response(request_id: str) -> JSONResponse:
    """The answer to an unexpected exception: fixed message and request id only."""
    body = ErrorBody(
        code=StatusCode.INTERNAL.name,
        message=f"{INTERNAL_MESSAGE} (request id {request_id})",
        request_id=request_id,
    )
    return JSONResponse(body.model_dump(), status_code=500, headers={"x-request-id": request_id})


def _violation_of(error: dict[str, Any]) -> FieldViolation:
    # ("body", "features", "age") -> "features.age"; the location's part ("body", "query",
    # "path") is not a field of the request.
    where = [str(part) for part in error.get("loc", ())[1:]]
    return FieldViolation(".".join(where) or str(error.get("loc", ("request",))[0]), error["msg"])


async def on_service_error(request: Request, error: Exception) -> JSONResponse:
    """Handler of every :class:`ServiceError`."""
    assert isinstance(error, ServiceError)
    request_id = request_id_of(request)
    log_service_error(error, request_id)
    request.state.code = error.code.name  # for the call's report (RequestIds)
    return error_response(error, request_id)


async def on_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """Handler of request validation: INVALID_ARGUMENT naming each field."""
    assert isinstance(error, RequestValidationError)
    violations = [_violation_of(dict(item)) for item in error.errors()]
    return await on_service_error(request, InvalidRequest("invalid request", violations))


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (an unknown path, a wrong method) in the same body."""
    assert isinstance(error, HTTPException)
    code = {404: StatusCode.NOT_FOUND, 401: StatusCode.UNAUTHENTICATED}.get(
        error.status_code, StatusCode.INVALID_ARGUMENT
    )
    request.state.code = code.name
    body = ErrorBody(code=code.name, message=str(error.detail), request_id=request_id_of(request))
    headers = {**(error.headers or {}), "x-request-id": request_id_of(request)}
    return JSONResponse(body.model_dump(), status_code=error.status_code, headers=headers)


async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
    """Handler of anything else: logged with its traceback, answered without it."""
    request_id = request_id_of(request)
    log.error("unexpected error, request id %s", request_id, exc_info=error)
    return internal_response(request_id)
