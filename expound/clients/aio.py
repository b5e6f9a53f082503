"""The asyncio Python client: :class:`AsyncExplainClient`, the same calls as
:class:`expound.clients.client.ExplainClient` on ``grpc.aio``.

Requests, channels and metadata come from the same functions as the synchronous client's,
so the two cannot drift; a test checks that their public methods match.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from expound.clients.channels import CallMetadata, ChannelSecurity, open_aio_channel
from expound.clients.client import explain_call_request, list_records_request
from expound.domain import FeatureScalar
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc

__all__ = ["AsyncExplainClient"]


async def _as_async(items: Iterable[pb.BatchItem]) -> AsyncIterator[pb.BatchItem]:
    for item in items:
        yield item


class AsyncExplainClient:
    """Calls one expound server from asyncio. Use as ``async with`` to close the channel.

    Args:
        target: ``host:port`` of the server.
        timeout: Deadline of each unary call, in seconds.
        security: TLS, the client certificate and the bearer token.
        headers: Metadata sent with every call (lower-case keys).
        request_id: Sent as ``x-request-id`` with every call (see :meth:`with_metadata`
            for one per call).
    """

    def __init__(
        self,
        target: str,
        timeout: float = 30.0,
        security: ChannelSecurity | None = None,
        *,
        headers: Mapping[str, str | bytes] | None = None,
        request_id: str = "",
    ) -> None:
        security = security or ChannelSecurity()
        self._metadata = CallMetadata(security.token, dict(headers or {}), request_id)
        self._channel = open_aio_channel(target, security)
        self._stub = explain_pb2_grpc.ExplainServiceStub(self._channel)
        self._timeout = timeout
        self._owns_channel = True

    async def __aenter__(self) -> AsyncExplainClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel (a view from :meth:`with_metadata` leaves it to its parent)."""
        if self._owns_channel:
            await self._channel.close()

    def with_metadata(
        self, *, request_id: str = "", headers: Mapping[str, str | bytes] | None = None
    ) -> AsyncExplainClient:
        """A view of this client, on the same channel, whose calls carry ``request_id``
        and ``headers`` (added to this client's)."""
        view = object.__new__(AsyncExplainClient)
        view.__dict__.update(self.__dict__)
        view._metadata = replace(
            self._metadata,
            headers={**self._metadata.headers, **(headers or {})},
            request_id=request_id or self._metadata.request_id,
        )
        view._owns_channel = False
        return view

    async def _unary(self, method: str, request: Any) -> Any:
        return await getattr(self._stub, method)(
            request, timeout=self._timeout, metadata=self._metadata.pairs()
        )

    async def explain(
        self,
        model_id: str,
        features: Mapping[str, FeatureScalar],
        *,
        audience: str = "applicant",
        question: str = "",
        decision_id: str = "",
        idempotency_key: str = "",
        num_candidates: int = 0,
        seed: int = 0,
        what_if: bool = False,
    ) -> pb.ExplainResponse:
        """Explains one decision (``what_if``: without archiving it; the analyst's role)."""
        request = explain_call_request(
            model_id,
            features,
            audience=audience,
            question=question,
            decision_id=decision_id,
            idempotency_key=idempotency_key,
            num_candidates=num_candidates,
            seed=seed,
            what_if=what_if,
        )
        response: pb.ExplainResponse = await self._unary("Explain", request)
        return response

    async def explain_batch(
        self,
        items: Iterable[pb.BatchItem] | AsyncIterable[pb.BatchItem],
        # A gRPC deadline, not a local one: it travels to the server, which stops work there.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[pb.BatchResult]:
        """Explains many decisions over one ExplainBatch call.

        Results come in the order of ``items``, each with its item id and either its
        response or the status its unary call would have had. An async iterable of items
        is read as the server takes them (flow control bounds what is in flight).

        Args:
            items: The decisions, each with the caller's id.
            timeout: For the whole call (None: no deadline; a batch may take long).

        Raises:
            grpc.aio.AioRpcError: The call failed as a whole (e.g. UNAUTHENTICATED).
        """
        source = items if isinstance(items, AsyncIterable) else _as_async(items)
        call = self._stub.ExplainBatch(source, timeout=timeout, metadata=self._metadata.pairs())
        async for result in call:
            yield result

    async def get_record(self, record_id: str, include_proof: bool = False) -> pb.Record:
        """One archived record, with its inclusion proof on request."""
        request = pb.GetRecordRequest(record_id=record_id, include_proof=include_proof)
        record: pb.Record = await self._unary("GetRecord", request)
        return record

    async def get_checkpoint(self, size: int = 0) -> pb.SignedCheckpoint:
        """The archive's signed checkpoint at ``size`` (0: the latest)."""
        checkpoint: pb.SignedCheckpoint = await self._unary(
            "GetCheckpoint", pb.GetCheckpointRequest(size=size)
        )
        return checkpoint

    async def list_records(
        self,
        *,
        model_id: str = "",
        decision_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.ListRecordsResponse:
        """One page of archived records, newest first."""
        request = list_records_request(
            model_id=model_id,
            decision_id=decision_id,
            since=since,
            until=until,
            page_size=page_size,
            page_token=page_token,
        )
        response: pb.ListRecordsResponse = await self._unary("ListRecords", request)
        return response

    async def iter_records(
        self,
        *,
        model_id: str = "",
        decision_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        include_proof: bool = False,
    ) -> AsyncIterator[pb.Record]:
        """Every matching archived record, newest first, page by page (one GetRecord each)."""
        token = ""
        while True:
            page = await self.list_records(
                model_id=model_id,
                decision_id=decision_id,
                since=since,
                until=until,
                page_size=500,
                page_token=token,
            )
            for summary in page.records:
                yield await self.get_record(summary.record_id, include_proof=include_proof)
            token = page.next_page_token
            if not token:
                return

    async def list_models(self) -> list[pb.ModelInfo]:
        """The models the server explains, then those it could not load (available False)."""
        response: pb.ListModelsResponse = await self._unary("ListModels", pb.ListModelsRequest())
        return list(response.models)

    async def get_model(self, model_id: str) -> pb.ModelInfo:
        """One model's schema and decision rule."""
        info: pb.ModelInfo = await self._unary("GetModel", pb.GetModelRequest(model_id=model_id))
        return info

    async def reload_models(self) -> pb.ReloadModelsResponse:
        """Has the server reread its model directory; says what changed."""
        report: pb.ReloadModelsResponse = await self._unary(
            "ReloadModels", pb.ReloadModelsRequest()
        )
        return report

    async def place_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Places a legal hold on a record (a signed log event naming this caller)."""
        request = pb.PlaceHoldRequest(record_id=record_id, reason=reason)
        event: pb.RecordEvent = await self._unary("PlaceHold", request)
        return event

    async def release_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Releases a record's legal hold (a signed log event naming the hold)."""
        request = pb.ReleaseHoldRequest(record_id=record_id, reason=reason)
        event: pb.RecordEvent = await self._unary("ReleaseHold", request)
        return event

    async def expire_records(self, record_ids: list[str], reason: str = "") -> list[pb.RecordEvent]:
        """Expires the named records (none named: every one due); returns the tombstones."""
        request = pb.ExpireRecordsRequest(record_ids=record_ids, reason=reason)
        response: pb.ExpireRecordsResponse = await self._unary("ExpireRecords", request)
        return list(response.tombstones)

    async def record_history(self, record_id: str) -> list[pb.RecordEvent]:
        """The events on a record, oldest first."""
        request = pb.GetRecordHistoryRequest(record_id=record_id)
        history: pb.RecordHistory = await self._unary("GetRecordHistory", request)
        return list(history.events)

    async def access_log(
        self, after_seq: int = 0, page_size: int = 0, record_id: str = ""
    ) -> pb.ListAccessLogResponse:
        """One page of the access log after entry ``after_seq`` (only reads of ``record_id``)."""
        request = pb.ListAccessLogRequest(
            after_seq=after_seq, page_size=page_size, record_id=record_id
        )
        response: pb.ListAccessLogResponse = await self._unary("ListAccessLog", request)
        return response
