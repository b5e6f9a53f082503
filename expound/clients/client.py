"""The synchronous Python client for expound's gRPC API (the asyncio one is ``aio``).

It needs grpcio, protobuf and pydantic only (``pip install expound``, no server extra):
nothing here imports the service, and a test holds it to that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from expound.clients.channels import CallMetadata, ChannelSecurity, open_channel
from expound.domain import FeatureScalar
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from expound.wire import AUDIENCES, explain_request, timestamp_to_pb

__all__ = [
    "AUDIENCES",
    "ChannelSecurity",
    "ErrorDetails",
    "ExplainClient",
    "error_details",
    "explain_call_request",
    "explain_request",
    "list_records_request",
]


@dataclass(frozen=True)
class ErrorDetails:
    """What a failed call said: code, message, offending fields and request id."""

    code: str
    message: str
    field_violations: list[tuple[str, str]]
    request_id: str


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Unpacks the rich status (google.rpc.Status) of a failed call, sync or asyncio."""
    call: Any = error if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)) else None
    if call is None:
        return ErrorDetails("UNKNOWN", str(error), [], "")
    violations: list[tuple[str, str]] = []
    request_id = ""
    status = rpc_status.from_call(call)
    for detail in list(status.details) if status is not None else []:
        bad_request = error_details_pb2.BadRequest()
        info = error_details_pb2.RequestInfo()
        if detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Unpack(info):
            request_id = info.request_id
    return ErrorDetails(call.code().name, call.details() or "", violations, request_id)


def explain_call_request(
    model_id: str,
    features: Mapping[str, FeatureScalar],
    *,
    audience: str,
    question: str,
    decision_id: str,
    idempotency_key: str,
    num_candidates: int,
    seed: int,
    what_if: bool,
) -> pb.ExplainRequest:
    """The request of :meth:`ExplainClient.explain` (and of the asyncio client's).

    Raises:
        ValueError: An audience not in :data:`AUDIENCES`.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience {audience!r}: one of {', '.join(sorted(AUDIENCES))}")
    return explain_request(
        model_id,
        features,
        question=question,
        audience=AUDIENCES[audience],
        decision_id=decision_id,
        idempotency_key=idempotency_key,
        num_candidates=num_candidates,
        seed=seed,
        what_if=what_if,
    )


def list_records_request(
    *,
    model_id: str = "",
    decision_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> pb.ListRecordsRequest:
    """The request of one page of :meth:`ExplainClient.list_records`."""
    return pb.ListRecordsRequest(
        model_id=model_id,
        decision_id=decision_id,
        since=timestamp_to_pb(since),
        until=timestamp_to_pb(until),
        page_size=page_size,
        page_token=page_token,
    )


class ExplainClient:
    """Calls one expound server. Use as a context manager to close the channel.

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
        self._channel = open_channel(target, security)
        self._stub = explain_pb2_grpc.ExplainServiceStub(self._channel)
        self._timeout = timeout
        self._owns_channel = True

    def __enter__(self) -> ExplainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel (a view from :meth:`with_metadata` leaves it to its parent)."""
        if self._owns_channel:
            self._channel.close()

    def with_metadata(
        self, *, request_id: str = "", headers: Mapping[str, str | bytes] | None = None
    ) -> ExplainClient:
        """A view of this client, on the same channel, whose calls carry ``request_id``
        and ``headers`` (added to this client's)."""
        view = object.__new__(ExplainClient)
        view.__dict__.update(self.__dict__)
        view._metadata = replace(
            self._metadata,
            headers={**self._metadata.headers, **(headers or {})},
            request_id=request_id or self._metadata.request_id,
        )
        view._owns_channel = False
        return view

    def _unary(self, method: str, request: Any) -> Any:
        return getattr(self._stub, method)(
            request, timeout=self._timeout, metadata=self._metadata.pairs()
        )

    def explain(
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
        response: pb.ExplainResponse = self._unary("Explain", request)
        return response

    def explain_batch(
        self, items: Iterable[pb.BatchItem], timeout: float | None = None
    ) -> Iterator[pb.BatchResult]:
        """Explains many decisions over one ExplainBatch call.

        Results come in the order of ``items``, each with its item id and either its
        response or the status its unary call would have had. ``items`` is read on gRPC's
        own thread as the server takes them; bound what is in flight there (see
        :class:`expound.clients.batch.Window`).

        Args:
            items: The decisions, each with the caller's id.
            timeout: For the whole call (None: no deadline; a batch may take long).

        Raises:
            grpc.RpcError: The call failed as a whole (e.g. UNAUTHENTICATED, UNAVAILABLE).
        """
        results: Iterator[pb.BatchResult] = self._stub.ExplainBatch(
            iter(items), timeout=timeout, metadata=self._metadata.pairs()
        )
        return results

    def get_record(self, record_id: str, include_proof: bool = False) -> pb.Record:
        """One archived record, with its inclusion proof on request."""
        request = pb.GetRecordRequest(record_id=record_id, include_proof=include_proof)
        record: pb.Record = self._unary("GetRecord", request)
        return record

    def get_checkpoint(self, size: int = 0) -> pb.SignedCheckpoint:
        """The archive's signed checkpoint at ``size`` (0: the latest)."""
        checkpoint: pb.SignedCheckpoint = self._unary(
            "GetCheckpoint", pb.GetCheckpointRequest(size=size)
        )
        return checkpoint

    def list_records(
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
        response: pb.ListRecordsResponse = self._unary("ListRecords", request)
        return response

    def iter_records(
        self,
        *,
        model_id: str = "",
        decision_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        include_proof: bool = False,
    ) -> Iterator[pb.Record]:
        """Every matching archived record, newest first, page by page (one GetRecord each)."""
        token = ""
        while True:
            page = self.list_records(
                model_id=model_id,
                decision_id=decision_id,
                since=since,
                until=until,
                page_size=500,
                page_token=token,
            )
            for summary in page.records:
                yield self.get_record(summary.record_id, include_proof=include_proof)
            token = page.next_page_token
            if not token:
                return

    def list_models(self) -> list[pb.ModelInfo]:
        """The models the server explains, then those it could not load (available False)."""
        response: pb.ListModelsResponse = self._unary("ListModels", pb.ListModelsRequest())
        return list(response.models)

    def get_model(self, model_id: str) -> pb.ModelInfo:
        """One model's schema and decision rule."""
        info: pb.ModelInfo = self._unary("GetModel", pb.GetModelRequest(model_id=model_id))
        return info

    def reload_models(self) -> pb.ReloadModelsResponse:
        """Has the server reread its model directory; says what changed."""
        report: pb.ReloadModelsResponse = self._unary("ReloadModels", pb.ReloadModelsRequest())
        return report

    def place_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Places a legal hold on a record (a signed log event naming this caller)."""
        request = pb.PlaceHoldRequest(record_id=record_id, reason=reason)
        event: pb.RecordEvent = self._unary("PlaceHold", request)
        return event

    def release_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Releases a record's legal hold (a signed log event naming the hold)."""
        request = pb.ReleaseHoldRequest(record_id=record_id, reason=reason)
        event: pb.RecordEvent = self._unary("ReleaseHold", request)
        return event

    def expire_records(self, record_ids: list[str], reason: str = "") -> list[pb.RecordEvent]:
        """Expires the named records (none named: every one due); returns the tombstones."""
        request = pb.ExpireRecordsRequest(record_ids=record_ids, reason=reason)
        response: pb.ExpireRecordsResponse = self._unary("ExpireRecords", request)
        return list(response.tombstones)

    def record_history(self, record_id: str) -> list[pb.RecordEvent]:
        """The events on a record, oldest first."""
        request = pb.GetRecordHistoryRequest(record_id=record_id)
        history: pb.RecordHistory = self._unary("GetRecordHistory", request)
        return list(history.events)

    def access_log(
        self, after_seq: int = 0, page_size: int = 0, record_id: str = ""
    ) -> pb.ListAccessLogResponse:
        """One page of the access log after entry ``after_seq`` (only reads of ``record_id``)."""
        request = pb.ListAccessLogRequest(
            after_seq=after_seq, page_size=page_size, record_id=record_id
        )
        response: pb.ListAccessLogResponse = self._unary("ListAccessLog", request)
        return response
