"""A batch stream the server ends early reaches its caller with the server's status.

grpc's asyncio client reports a write that fails because the server already ended the
stream as INTERNAL "Internal error from Core", over the status the server sent
(grpc/grpc#36066). A refused batch whose caller was still sending read as a server failure:
at random for a one-item batch under load (seen in test_access's role matrix), every time
for a large one. The server now reads what the caller still sends (bounded) before ending
the stream, so these tests send batches far larger than one flow-control window, over a
real loopback socket with authentication on, with the asyncio client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from expound.server import errors
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from tests.support.security import ROLES, bearer, write_policy, write_tokens
from tests.support.wire_status import rich_status, violations

BATCH = "/expound.v1.ExplainService/ExplainBatch"
# 64 items of 60 KiB: several times what flow control lets through before the server reads.
LARGE = [pb.BatchItem(item_id=f"{n}-" + "x" * (60 << 10)).SerializeToString() for n in range(64)]


@pytest.fixture
async def batch_call(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[grpc.aio.StreamStreamMultiCallable, dict[str, str]]]:
    """ExplainBatch with raw bytes in, on a server with tokens and the default policy."""
    tokens = write_tokens(tmp_path / "tokens", list(ROLES))
    policy = write_policy(tmp_path / "policy.toml", {role: [role] for role in ROLES})
    secured = settings.model_copy(
        update={"tokens_file": tmp_path / "tokens", "policy_file": policy}
    )
    async with (
        running_server(secured) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield channel.stream_stream(BATCH), tokens


async def ended_with(call: grpc.aio.StreamStreamCall) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    return caught.value


@pytest.mark.parametrize(
    ("caller", "code", "message"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
        ("auditor", grpc.StatusCode.PERMISSION_DENIED, "permission denied"),
    ],
)
async def test_a_refused_batch_still_being_sent_gets_its_refusal_not_internal(
    batch_call: tuple[grpc.aio.StreamStreamMultiCallable, dict[str, str]],
    caller: str | None,
    code: grpc.StatusCode,
    message: str,
) -> None:
    batch, tokens = batch_call
    credential = bearer(tokens[caller]) if caller else ()
    for round_ in range(3):
        request_id = f"big-{round_}"
        call = batch(iter(LARGE), metadata=(*credential, ("x-request-id", request_id)), timeout=30)
        error = await ended_with(call)
        assert (error.code(), error.details()) == (code, message), error.debug_error_string()
        assert dict(error.trailing_metadata())["x-request-id"] == request_id
        assert len(rich_status(error).details) == 1  # the request id only


async def test_an_undecodable_item_ends_a_large_batch_with_invalid_argument_not_internal(
    batch_call: tuple[grpc.aio.StreamStreamMultiCallable, dict[str, str]],
) -> None:
    batch, tokens = batch_call
    items = iter([b"\xff\xff\xff", *LARGE])
    metadata = (*bearer(tokens["decider"]), ("x-request-id", "undecodable"))
    error = await ended_with(batch(items, metadata=metadata, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.debug_error_string()
    assert error.details() == "request is not a valid protobuf message"
    assert dict(error.trailing_metadata())["x-request-id"] == "undecodable"
    assert violations(error)[0][0] == ""


async def test_a_refused_caller_that_keeps_its_side_open_is_answered_after_a_pause(
    batch_call: tuple[grpc.aio.StreamStreamMultiCallable, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A caller may send an item and wait for its answer before ending its side: it is
    # answered once it has sent nothing for DRAIN_IDLE_S, long before the whole bound.
    monkeypatch.setattr(errors, "DRAIN_TOTAL_S", 40 * errors.DRAIN_IDLE_S)
    batch, _ = batch_call
    started = time.monotonic()
    call = batch(metadata=(("x-request-id", "open"),), timeout=60)
    await call.write(pb.BatchItem(item_id="one").SerializeToString())
    assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - started < errors.DRAIN_TOTAL_S / 2
    assert dict(await call.trailing_metadata())["x-request-id"] == "open"


async def test_reading_on_leaves_the_status_time_to_reach_the_caller_before_its_deadline(
    batch_call: tuple[grpc.aio.StreamStreamMultiCallable, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bounds far past the deadline: only the deadline rule ends the reading.
    monkeypatch.setattr(errors, "DRAIN_IDLE_S", 60.0)
    monkeypatch.setattr(errors, "DRAIN_TOTAL_S", 60.0)
    batch, _ = batch_call
    call = batch(metadata=(("x-request-id", "deadline"),), timeout=3)
    assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(await call.trailing_metadata())["x-request-id"] == "deadline"
