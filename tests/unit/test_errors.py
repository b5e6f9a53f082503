"""The exception tree and its one mapping to gRPC statuses (server/errors.py)."""

from __future__ import annotations

import inspect
import logging
import re
import sqlite3
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

import expound.errors
from expound.calling import request_id_var
from expound.errors import (
    ArchiveUnavailable,
    FieldViolation,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ServiceError,
)
from expound.server.errors import (
    GRPC_CODES,
    INTERNAL_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_STATUS_BYTES,
    MAX_VIOLATIONS,
    cut_field,
    cut_utf8,
    guarded,
    status_for,
)


def service_errors() -> list[type[ServiceError]]:
    """ServiceError and every subclass defined in expound.errors, however deep."""
    found: list[type[ServiceError]] = []
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == expound.errors.__name__:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


def instance(cls: type[ServiceError]) -> ServiceError:
    """An instance of ``cls``, filling whatever its constructor asks for."""
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if name == "violations":
            arguments[name] = [FieldViolation("features[x]", "bad")]
        elif parameter.default is inspect.Parameter.empty:
            arguments[name] = f"some {name}"
    return cls(**arguments)


def unpacked(status: status_pb2.Status) -> dict[str, Any]:
    """The status details by type name."""
    found: dict[str, Any] = {}
    for detail in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.RequestInfo,
            error_details_pb2.RetryInfo,
        ):
            message = kind()
            if detail.Unpack(message):
                found[kind.DESCRIPTOR.name] = message
    return found


def test_the_tree_is_found() -> None:
    names = {cls.__name__ for cls in service_errors()}
    assert {"ServiceError", "InvalidRequest", "ModelNotFound", "LLMError"} <= names


@pytest.mark.parametrize("cls", service_errors(), ids=lambda cls: cls.__name__)
def test_every_service_error_maps_to_its_grpc_status(cls: type[ServiceError]) -> None:
    assert cls.code in GRPC_CODES, f"{cls.__name__}.code {cls.code} has no gRPC mapping"
    assert GRPC_CODES[cls.code].name == cls.code.name
    status = status_for(instance(cls), "req-1")
    assert status.code == GRPC_CODES[cls.code].value[0]
    assert unpacked(status)["RequestInfo"].request_id == "req-1"


@pytest.mark.parametrize("cls", service_errors(), ids=lambda cls: cls.__name__)
def test_the_module_docstring_draws_every_error_with_its_code(cls: type[ServiceError]) -> None:
    doc = expound.errors.__doc__ or ""
    drawn = re.search(rf"\b{cls.__name__}\s+([A-Z_]+)", doc)
    assert drawn, f"{cls.__name__} is missing from the tree in expound.errors' docstring"
    assert drawn.group(1) == cls.code.name


def test_every_status_code_has_a_grpc_code() -> None:
    assert set(GRPC_CODES) == set(expound.errors.StatusCode)


def test_every_status_code_is_raised_by_some_error() -> None:
    # A code that no error carries is a promise in the docs that the service never keeps.
    assert {cls.code for cls in service_errors()} == set(expound.errors.StatusCode)


def test_invalid_request_carries_every_field_violation() -> None:
    violations = [
        FieldViolation("features[savings]", "required feature is missing"),
        FieldViolation("audience", "unknown audience 99"),
    ]
    status = status_for(InvalidRequest("2 invalid fields", violations), "req-2")
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "2 invalid fields"
    bad = unpacked(status)["BadRequest"]
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("features[savings]", "required feature is missing"),
        ("audience", "unknown audience 99"),
    ]


def test_other_errors_carry_no_bad_request() -> None:
    status = status_for(ModelNotFound("unknown model 'x'"), "req-3")
    assert status.code == code_pb2.NOT_FOUND
    assert set(unpacked(status)) == {"RequestInfo"}


def test_a_shed_call_carries_its_retry_delay() -> None:
    status = status_for(Overloaded("server busy", retry_after_s=1.5), "req-5")
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert set(unpacked(status)) == {"RetryInfo", "RequestInfo"}
    assert unpacked(status)["RetryInfo"].retry_delay.ToTimedelta().total_seconds() == 1.5


def test_long_messages_are_cut_to_fit_the_trailer() -> None:
    status = status_for(ModelNotFound("unknown model " + "m" * 50_000), "req-4")
    assert len(status.message) == MAX_MESSAGE_BYTES
    assert status.message.startswith("unknown model mmm") and status.message.endswith("...")


def test_messages_are_cut_in_utf8_bytes_at_a_character_boundary() -> None:
    status = status_for(ModelNotFound("unknown record " + "😀" * 1200), "req-4")
    encoded = status.message.encode("utf-8")
    assert len(encoded) <= MAX_MESSAGE_BYTES and status.message.endswith("😀...")
    assert cut_utf8("é" * 10, 8) == "éé..."
    assert cut_utf8("short", 5) == "short"


def test_long_field_paths_keep_their_brackets() -> None:
    assert (
        cut_field("features[" + "\U0001f600" * 100 + "]", 40)
        == "features[" + "\U0001f600" * 6 + "...]"
    )
    assert len(cut_field("features[" + "x" * 500 + "]").encode()) == 128
    assert cut_field("model_id" * 50, 20) == "model_idmodel_idm..."
    assert cut_field("features[ok]") == "features[ok]"


@pytest.mark.parametrize("count", [MAX_VIOLATIONS, MAX_VIOLATIONS + 1, 10_000])
def test_violations_are_bounded_then_summed_up(count: int) -> None:
    violations = [FieldViolation(f"features[f{i}]", "unknown feature") for i in range(count)]
    status = status_for(InvalidRequest("bad", violations), "req-6")
    listed = unpacked(status)["BadRequest"].field_violations
    assert status.ByteSize() <= MAX_STATUS_BYTES
    if count == MAX_VIOLATIONS:
        assert [v.field for v in listed] == [v.field for v in violations]
        return
    assert len(listed) == MAX_VIOLATIONS + 1
    assert [v.field for v in listed[:-1]] == [v.field for v in violations[:MAX_VIOLATIONS]]
    assert listed[-1].description == f"and {count - MAX_VIOLATIONS} more"


def test_long_violations_are_cut_and_fewer_listed_to_fit_the_budget() -> None:
    violations = [FieldViolation("😀" * 500 + str(i), "é" * 2000) for i in range(200)]
    status = status_for(InvalidRequest("😀" * 2000, violations), "r" * 128)
    assert status.ByteSize() <= MAX_STATUS_BYTES
    listed = unpacked(status)["BadRequest"].field_violations
    assert 2 <= len(listed) < MAX_VIOLATIONS
    assert listed[-1].description == f"and {200 - len(listed) + 1} more"
    assert unpacked(status)["RequestInfo"].request_id == "r" * 128


class AbortedCall(Exception):
    """Stands in for grpc.aio.AbortError in the fake context."""


class FakeContext:
    """The part of grpc.aio.ServicerContext that ``guarded`` uses."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._metadata = metadata
        self.trailing: tuple[tuple[str, str], ...] = ()
        self.aborted_with: grpc.Status | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.aborted_with = status
        raise AbortedCall


def sent_status(context: FakeContext) -> status_pb2.Status:
    assert context.aborted_with is not None
    for key, value in context.aborted_with.trailing_metadata:
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no rich status sent")


async def test_guarded_sends_the_service_errors_status_with_the_callers_request_id() -> None:
    async def handler(request: Any, context: Any) -> Any:
        assert request_id_var.get() == "req-5"
        raise InvalidRequest("bad", [FieldViolation("model_id", "required")])

    context = FakeContext(metadata=(("x-request-id", "req-5"),))
    with pytest.raises(AbortedCall):
        await guarded(handler)(object(), context)  # type: ignore[arg-type]
    assert context.aborted_with is not None
    assert context.aborted_with.code == grpc.StatusCode.INVALID_ARGUMENT
    status = sent_status(context)
    assert unpacked(status)["BadRequest"].field_violations[0].field == "model_id"
    assert context.trailing == (("x-request-id", "req-5"),)
    assert request_id_var.get() == ""


async def test_a_failed_commit_is_logged_with_its_real_cause_and_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: Any, context: Any) -> Any:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:
            raise ArchiveUnavailable("archive write could not be committed") from exc

    context = FakeContext(metadata=(("x-request-id", "req-full"),))
    with caplog.at_level(logging.INFO, logger="expound.server"), pytest.raises(AbortedCall):
        await guarded(handler)(object(), context)  # type: ignore[arg-type]
    (line,) = [r for r in caplog.records if "req-full" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "UNAVAILABLE" in line.getMessage()
    assert "OperationalError: database or disk is full" in line.getMessage()
    assert "disk is full" not in str(sent_status(context))  # the cause stays in the log


async def test_a_refused_call_is_one_log_line_that_quotes_what_the_caller_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: Any, context: Any) -> Any:
        raise InvalidRequest("unknown model 'x\n[forged] line'", [FieldViolation("model_id", "?")])

    context = FakeContext(metadata=(("x-request-id", "req-bad"),))
    with caplog.at_level(logging.INFO, logger="expound.server"), pytest.raises(AbortedCall):
        await guarded(handler)(object(), context)  # type: ignore[arg-type]
    (line,) = [r for r in caplog.records if "req-bad" in r.getMessage()]
    assert line.levelno == logging.INFO and "INVALID_ARGUMENT" in line.getMessage()
    assert "\n" not in line.getMessage()


async def test_guarded_generates_a_request_id_and_hides_foreign_errors() -> None:
    async def handler(request: Any, context: Any) -> Any:
        raise ZeroDivisionError("secret detail")

    context = FakeContext(metadata=(("x-request-id", "x" * 500),))  # too long: replaced
    with pytest.raises(AbortedCall):
        await guarded(handler)(object(), context)  # type: ignore[arg-type]
    assert context.aborted_with is not None
    request_id = dict(context.trailing)["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert context.aborted_with.code == grpc.StatusCode.INTERNAL
    assert context.aborted_with.details == f"{INTERNAL_MESSAGE} (request id {request_id})"
    assert "secret" not in str(sent_status(context))


async def test_guarded_passes_answers_through() -> None:
    async def handler(request: Any, context: Any) -> Any:
        return ("answer", request)

    context = FakeContext()
    assert await guarded(handler)("question", context) == ("answer", "question")  # type: ignore[arg-type]
    assert context.aborted_with is None


@pytest.mark.parametrize("chosen", ["a\nforged line", "\x1b[31mred", "caf\u00e9", "", "x" * 129])
async def test_request_ids_a_caller_chose_are_kept_only_when_printable_ascii(chosen: str) -> None:
    async def handler(request: Any, context: Any) -> Any:
        return request_id_var.get()

    context = FakeContext(metadata=(("x-request-id", chosen),))
    request_id = await guarded(handler)(object(), context)  # type: ignore[arg-type]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert dict(context.trailing)["x-request-id"] == request_id
