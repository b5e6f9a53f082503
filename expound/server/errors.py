"""The boundary where exceptions become gRPC statuses, and the request id travels.

Every handler is wrapped, unary ones by :func:`guarded` and the batch stream by
:func:`guarded_stream` (same request id, access check, report): a :class:`ServiceError`
becomes its status code with a ``google.rpc.Status`` carrying ``BadRequest`` field
violations, ``RetryInfo`` for a shed call, and ``RequestInfo``; any other exception becomes
INTERNAL with a fixed message and the request id (logged with its traceback here, never
sent). The request id comes from ``x-request-id`` metadata or is generated, lives in a
contextvar for the call, and is returned as trailing metadata.

Request bytes are decoded inside the wrapper too, so undecodable bytes are INVALID_ARGUMENT
with a request id like any other bad input (gRPC's own decoding would answer UNKNOWN).

The whole status travels in trailing metadata, which clients refuse beyond 8 KiB by default;
messages may quote the caller's input. So the message, each violation's field and
description are cut to a number of UTF-8 bytes, and violations are listed while the encoded
status stays within a byte budget (at most ``MAX_VIOLATIONS``), then summed up in one more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from expound.calling import (
    ANONYMOUS,
    own_records_only_var,
    principal_var,
    request_id_var,
    what_if_allowed_var,
)
from expound.errors import FieldViolation, InvalidRequest, ServiceError, StatusCode
from expound.server.auth import AccessControl, admit

log = logging.getLogger("expound.server")


GRPC_CODES: dict[StatusCode, grpc.StatusCode] = {
    StatusCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    StatusCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    StatusCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    StatusCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    StatusCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    StatusCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StatusCode.INTERNAL: grpc.StatusCode.INTERNAL,
    StatusCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    StatusCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
}
# Codes that mean the service failed, not the caller: logged at WARNING with their cause.
SERVER_SIDE = frozenset({StatusCode.UNAVAILABLE, StatusCode.INTERNAL})
# Refused access, logged at WARNING with its cause (why; the caller is told nothing).
ACCESS_REFUSED = frozenset({StatusCode.UNAUTHENTICATED, StatusCode.PERMISSION_DENIED})

INTERNAL_MESSAGE = "internal error"
# Byte budgets (UTF-8) of what the trailer carries. grpc-message percent-encodes non-ASCII
# bytes (3 bytes each) and grpc-status-details-bin is base64 (4 per 3) of a status that
# repeats the message: 512 + 3 * 512 + 4/3 * 3072 bytes, plus the request id, fit 8 KiB.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_BYTES = 128
MAX_DESCRIPTION_BYTES = 256
MAX_STATUS_BYTES = 3072
MAX_VIOLATIONS = 50
# A stream the server ends early is read on until the caller ends its side (see _drain):
# at most this long waiting for each next message, this long in all, and never more than
# half the time left to the caller's deadline (its status must still reach it in time).
DRAIN_IDLE_S = 0.5
DRAIN_TOTAL_S = 5.0


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def cut_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes at a character boundary.

    A cut text ends in "..." (counted in the bytes).
    """
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode("utf-8", "ignore") + "..."


def cut_field(path: str, max_bytes: int = MAX_FIELD_BYTES) -> str:
    """A field path cut like :func:`cut_utf8`, keeping a trailing key's brackets whole.

    ``features[<a long name>]`` stays ``features[<its start>...]``, a path a client can parse.
    """
    opening = path.find("[")
    if len(path.encode("utf-8")) <= max_bytes or opening < 0 or not path.endswith("]"):
        return cut_utf8(path, max_bytes)
    head = path[: opening + 1]
    room = max_bytes - len(head.encode("utf-8")) - 1
    return head + cut_utf8(path[opening + 1 : -1], room) + "]"


def _bad_request(violations: list[FieldViolation], budget: int) -> error_details_pb2.BadRequest:
    """The violations that fit ``budget`` bytes (and MAX_VIOLATIONS), then "and N more"."""
    bad = error_details_pb2.BadRequest()
    for listed, violation in enumerate(violations):
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=cut_field(violation.field),
            description=cut_utf8(violation.description, MAX_DESCRIPTION_BYTES),
        )
        # Room is kept for the summary entry (a field and a short description).
        room = budget - MAX_FIELD_BYTES - 40
        if listed == MAX_VIOLATIONS or bad.ByteSize() + entry.ByteSize() + 8 > room:
            bad.field_violations.add(
                field=entry.field, description=f"and {len(violations) - listed} more"
            )
            break
        bad.field_violations.append(entry)
    return bad


def status_for(error: ServiceError, request_id: str) -> status_pb2.Status:
    """The rich status of a service error, with field violations and the request id.

    The status is bounded (see the module docstring): a long list of violations keeps its
    first entries and ends with one whose description says how many more there were.
    """
    code = GRPC_CODES[error.code]
    status = status_pb2.Status(
        code=code.value[0],
        message=cut_utf8(error.message, MAX_MESSAGE_BYTES),
        details=[_packed(error_details_pb2.RequestInfo(request_id=request_id))],
    )
    if isinstance(error, InvalidRequest):
        # Any adds the type URL (about 60 bytes) and tags around the BadRequest.
        budget = MAX_STATUS_BYTES - status.ByteSize() - 80
        status.details.insert(0, _packed(_bad_request(error.violations, budget)))
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after_s))
        status.details.insert(0, _packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status


def internal_status(request_id: str) -> status_pb2.Status:
    """The status sent for an unexpected exception: fixed message, request id, nothing else."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"{INTERNAL_MESSAGE} (request id {request_id})",
        details=[_packed(error_details_pb2.RequestInfo(request_id=request_id))],
    )


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _printable_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        # Printable ASCII only: the id is logged and echoed, and the caller chose it.
        if key == "x-request-id" and isinstance(value, str) and _printable_id(value):
            return value
    return uuid.uuid4().hex


Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True)
class _AbortStatus(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _with_request_id(status: status_pb2.Status, request_id: str) -> grpc.Status:
    """The status to abort with; its trailer keeps ``x-request-id`` (aborting replaces it)."""
    plain = rpc_status.to_status(status)
    return _AbortStatus(
        plain.code, plain.details, (*plain.trailing_metadata, ("x-request-id", request_id))
    )


def _decoded(request: bytes, deserialize: Deserializer) -> Any:
    try:
        return deserialize(request)
    except DecodeError as error:
        raise InvalidRequest(
            "request is not a valid protobuf message",
            [FieldViolation("", "the request bytes do not decode as this method's message")],
        ) from error


def log_service_error(error: ServiceError, request_id: str) -> None:
    """One line per refused call; a server-side failure or refused access at WARNING with its
    real cause.

    The cause chain is what the caller never sees (e.g. SQLITE_FULL behind "archive write
    could not be committed"); an operator needs it. Text is ``%r``-quoted, so what a caller
    sent can never forge a log line; the JSON format escapes it besides, and carries the
    code and cause as fields of their own.
    """
    cause = error.__cause__
    if error.code in SERVER_SIDE or error.code in ACCESS_REFUSED:
        why = f"{type(cause).__name__}: {cause}" if cause is not None else ""
        log.warning(
            "%s %r request id %s cause %r",
            error.code.name,
            error.message,
            request_id,
            why,
            extra={"code": error.code.name, "cause": why},
        )
    else:
        log.info(
            "%s %r request id %s",
            error.code.name,
            error.message[:200],
            request_id,
            extra={"code": error.code.name},
        )


# Called as each call ends: (method, code name, perf_counter at start, response or None,
# context, request id). The server's Telemetry counts, times, traces and logs the call.
CallDone = Callable[[str, str, float, Any, grpc.aio.ServicerContext, str], None]


class _Call:
    """One call's guard state: its request id, start, code and the variables it set.

    Whatever the call sets (its principal, its record scope, its what-if grant) stays set
    until the call has been reported, and is undone after.
    """

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self.started = time.perf_counter()
        self.request_id = _request_id(context)
        # A call that ends otherwise (the caller went away) is CANCELLED.
        self.code = "CANCELLED"
        self._tokens = (
            request_id_var.set(self.request_id),
            principal_var.set(ANONYMOUS),
            own_records_only_var.set(False),
            what_if_allowed_var.set(True),
        )
        context.set_trailing_metadata((("x-request-id", self.request_id),))

    def failed(self, error: Exception, context: grpc.aio.ServicerContext) -> grpc.Status | None:
        """The status to abort with for ``error`` (None: the handler aborted itself)."""
        if isinstance(error, ServiceError):
            self.code = error.code.name
            log_service_error(error, self.request_id)
            return _with_request_id(status_for(error, self.request_id), self.request_id)
        if isinstance(error, grpc.aio.AbortError):
            aborted = context.code()  # the handler aborted itself, with its own code
            self.code = aborted.name if isinstance(aborted, grpc.StatusCode) else "UNKNOWN"
            return None
        self.code = "INTERNAL"
        log.exception("unexpected error, request id %s", self.request_id, exc_info=error)
        return _with_request_id(internal_status(self.request_id), self.request_id)

    def done(
        self,
        method: str,
        response: Any,
        context: grpc.aio.ServicerContext,
        call_done: CallDone | None,
    ) -> None:
        """Reports the call, then undoes what it set."""
        try:
            if call_done is not None:
                call_done(method, self.code, self.started, response, context, self.request_id)
        finally:
            variables = (request_id_var, principal_var, own_records_only_var, what_if_allowed_var)
            for variable, token in zip(variables, self._tokens, strict=True):
                variable.reset(token)  # type: ignore[attr-defined]


def guarded(
    handler: Handler,
    deserialize: Deserializer | None = None,
    method: str = "",
    access: AccessControl | None = None,
    call_done: CallDone | None = None,
) -> Handler:
    """Wraps a unary handler so only documented statuses leave it.

    Args:
        handler: The servicer method.
        method: The full method name (``/expound.v1.ExplainService/Explain``), for access
            control and the access log.
        deserialize: When given, the wrapper receives the raw request bytes and decodes
            them with this, inside the guard (undecodable bytes are INVALID_ARGUMENT).
        access: When given, the call is authenticated and its role checked before its
            request is even decoded (UNAUTHENTICATED, PERMISSION_DENIED).
        call_done: Told how every call ended (metrics, trace, access log), refused ones too,
            while the call's principal is still set.
    """

    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(context)
        response = None
        try:
            admit(access, method, context)
            if deserialize is not None:
                request = _decoded(request, deserialize)
            response = await handler(request, context)
            call.code = "OK"
            return response
        except Exception as error:
            status = call.failed(error, context)
            if status is None:
                raise
        finally:
            call.done(method, response, context, call_done)
        await context.abort_with_status(status)

    return wrapper


StreamHandler = Callable[[AsyncIterator[Any], grpc.aio.ServicerContext], AsyncIterator[Any]]


async def _decoding(requests: AsyncIterator[Any], deserialize: Deserializer) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request, deserialize)


async def _drain(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
    """Reads, and drops undecoded, what the caller still sends on a stream the server is
    about to end with an error, until the caller ends its side (bounded).

    Why: a stream the server ends while the caller is still sending is reset (HTTP/2
    RST_STREAM), and grpc's asyncio client then turns its failed write into INTERNAL
    "Internal error from Core", overwriting the status the server sent (grpc/grpc#36066):
    a refused batch would read as a server failure, at random under load and every time
    for a large one. Once the caller has ended its side, none of its writes can fail. A
    caller that keeps the stream open gets its status once it pauses for ``DRAIN_IDLE_S``,
    after ``DRAIN_TOTAL_S`` however it sends, and within half its remaining deadline;
    nothing read is kept. This gives a refused caller nothing it lacks: a unary call whose
    request never finishes arriving holds the server longer.
    """
    remaining = context.time_remaining()
    budget = DRAIN_TOTAL_S if remaining is None else min(DRAIN_TOTAL_S, remaining / 2)
    loop = asyncio.get_running_loop()
    until = loop.time() + budget
    pending = aiter(requests)
    try:
        while (left := until - loop.time()) > 0:
            async with asyncio.timeout(min(left, DRAIN_IDLE_S)):
                await anext(pending)
    except StopAsyncIteration:
        return  # the caller ended its side: the status can go
    except Exception:  # TimeoutError, or the call already over: send it now
        return


def guarded_stream(
    handler: StreamHandler,
    deserialize: Deserializer | None = None,
    method: str = "",
    access: AccessControl | None = None,
    call_done: CallDone | None = None,
) -> StreamHandler:
    """Wraps a stream-stream handler exactly as :func:`guarded` wraps a unary one.

    The call is authenticated and its role checked before the first message is read; it
    gets its request id, and is reported once, when the stream ends (its code is the
    stream's, whatever its items' outcomes). Each message is decoded inside the guard: an
    undecodable one ends the stream with INVALID_ARGUMENT. A handler's per-item errors are
    its own to report in its responses. A stream ended with an error is read on until the
    caller ends its side (bounded, :func:`_drain`), so the caller gets that error.
    """

    async def wrapper(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        call = _Call(context)
        try:
            admit(access, method, context)
            decoded = _decoding(requests, deserialize) if deserialize is not None else requests
            async for response in handler(decoded, context):
                yield response
            call.code = "OK"
            return
        except Exception as error:
            status = call.failed(error, context)
            if status is None:
                raise
        finally:
            call.done(method, None, context, call_done)
        await _drain(requests, context)
        await context.abort_with_status(status)

    return wrapper


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Applies :func:`guarded` to every unary-unary method of the service, and
    :func:`guarded_stream` to every stream-stream one: no RPC bypasses the guard.

    The handler is registered without a request deserializer (gRPC hands over the bytes),
    and the guard decodes them with the method's own. A method of another shape (none
    today) is refused at registration rather than served unguarded.
    """

    def __init__(
        self, access: AccessControl | None = None, call_done: CallDone | None = None
    ) -> None:
        self._access = access
        self._call_done = call_done

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                guarded(
                    handler.unary_unary,
                    handler.request_deserializer,
                    method,
                    self._access,
                    self._call_done,
                ),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                guarded_stream(
                    handler.stream_stream,
                    handler.request_deserializer,
                    method,
                    self._access,
                    self._call_done,
                ),
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{method}: only unary-unary and stream-stream methods are guarded")
