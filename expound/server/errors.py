"""The boundary where exceptions become gRPC statuses, and the request id travels.

Every unary handler is wrapped: a :class:`ServiceError` becomes its status code with a
``google.rpc.Status`` carrying ``BadRequest`` field violations, ``RetryInfo`` for a shed
call, and ``RequestInfo``; any other exception becomes INTERNAL with a fixed message and
the request id (logged with its traceback here, never sent). The request id comes from
``x-request-id`` metadata or is generated, lives in a contextvar for the call, and is
returned as trailing metadata.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from expound.errors import InvalidRequest, Overloaded, ServiceError, StatusCode

log = logging.getLogger("expound.server")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

GRPC_CODES: dict[StatusCode, grpc.StatusCode] = {
    StatusCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    StatusCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    StatusCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    StatusCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    StatusCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    StatusCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StatusCode.INTERNAL: grpc.StatusCode.INTERNAL,
}

INTERNAL_MESSAGE = "internal error"
# Status messages travel in trailing metadata, which clients refuse beyond 16 KiB; error
# messages may quote the caller's input (an unknown id), so they are cut to this length.
MAX_MESSAGE_CHARS = 1000


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(error: ServiceError, request_id: str) -> status_pb2.Status:
    """The rich status of a service error, with field violations and the request id."""
    code = GRPC_CODES[error.code]
    details = [_packed(error_details_pb2.RequestInfo(request_id=request_id))]
    if isinstance(error, InvalidRequest):
        details.insert(
            0,
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            ),
        )
    if isinstance(error, Overloaded):
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after_s))
        details.insert(0, _packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    message = error.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def internal_status(request_id: str) -> status_pb2.Status:
    """The status sent for an unexpected exception: fixed message, request id, nothing else."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"{INTERNAL_MESSAGE} (request id {request_id})",
        details=[_packed(error_details_pb2.RequestInfo(request_id=request_id))],
    )


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return uuid.uuid4().hex


def guarded(handler: Handler) -> Handler:
    """Wraps a unary handler so only documented statuses leave it."""

    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        request_id = _request_id(context)
        token = request_id_var.set(request_id)
        context.set_trailing_metadata((("x-request-id", request_id),))
        try:
            return await handler(request, context)
        except ServiceError as error:
            status = status_for(error, request_id)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error, request id %s", request_id)
            status = internal_status(request_id)
        finally:
            request_id_var.reset(token)
        await context.abort_with_status(rpc_status.to_status(status))

    return wrapper


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Applies :func:`guarded` to every unary-unary method of the service."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            guarded(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
