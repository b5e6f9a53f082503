"""A small synchronous Python client for expound's gRPC API."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from expound.domain import FeatureScalar
from expound.server.convert import feature_to_pb
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc

AUDIENCES = {"applicant": pb.APPLICANT, "analyst": pb.ANALYST, "compliance": pb.COMPLIANCE}


@dataclass(frozen=True)
class ErrorDetails:
    """What a failed call said: code, message, offending fields and request id."""

    code: str
    message: str
    field_violations: list[tuple[str, str]]
    request_id: str


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Unpacks the rich status (google.rpc.Status) of a failed call."""
    code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    violations: list[tuple[str, str]] = []
    request_id = ""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    for detail in list(status.details) if status is not None else []:
        bad_request = error_details_pb2.BadRequest()
        info = error_details_pb2.RequestInfo()
        if detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Unpack(info):
            request_id = info.request_id
    return ErrorDetails(code, message or "", violations, request_id)


def _timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def explain_request(
    model_id: str, features: Mapping[str, FeatureScalar], **fields: Any
) -> pb.ExplainRequest:
    """An ExplainRequest from plain feature values (other fields as keywords)."""
    return pb.ExplainRequest(
        model_id=model_id,
        features={name: feature_to_pb(value) for name, value in features.items()},
        **fields,
    )


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client proves the server and itself: TLS, a client certificate, a token.

    TLS is on when ``tls_ca`` or ``cert`` is set (``tls_ca`` unset: the system's CAs).
    """

    tls_ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str = ""

    @property
    def tls(self) -> bool:
        """Whether the channel speaks TLS."""
        return self.tls_ca is not None or self.cert is not None


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{option} {path}: {error.strerror or error}") from error


def _loopback_target(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]") if ":" in target else target
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call, the batch stream's too."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), self._header))

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._with_token(details), requests)


def open_channel(target: str, security: ChannelSecurity | None = None) -> grpc.Channel:
    """A channel to ``target``: plaintext, TLS (with a client certificate), a token.

    Raises:
        ValueError: Naming the option: a certificate without its key (or the reverse), a
            file that cannot be read, or a token that would travel in clear to another host.
    """
    security = security or ChannelSecurity()
    if (security.cert is None) != (security.key is None):
        raise ValueError("--cert and --key go together (EXPOUND_CLIENT_CERT, EXPOUND_CLIENT_KEY)")
    if security.token and not security.tls and not _loopback_target(target):
        raise ValueError(
            f"--token: refusing to send a token in clear to {target}; give --tls-ca (or --cert)"
        )
    if security.tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(security.tls_ca, "--tls-ca") if security.tls_ca else None,
            private_key=_read(security.key, "--key") if security.key else None,
            certificate_chain=_read(security.cert, "--cert") if security.cert else None,
        )
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    if security.token:
        return grpc.intercept_channel(channel, _BearerToken(security.token))
    return channel


class ExplainClient:
    """Calls one expound server. Use as a context manager to close the channel."""

    def __init__(
        self, target: str, timeout: float = 30.0, security: ChannelSecurity | None = None
    ) -> None:
        self._channel = open_channel(target, security)
        self._stub = explain_pb2_grpc.ExplainServiceStub(self._channel)
        self._timeout = timeout

    def __enter__(self) -> ExplainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

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
        request = explain_request(
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
        response: pb.ExplainResponse = self._stub.Explain(request, timeout=self._timeout)
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
            timeout: For the whole call (None: no deadline; a batch may take long).

        Raises:
            grpc.RpcError: The call failed as a whole (e.g. UNAUTHENTICATED, UNAVAILABLE).
        """
        results: Iterator[pb.BatchResult] = self._stub.ExplainBatch(iter(items), timeout=timeout)
        return results

    def get_record(self, record_id: str, include_proof: bool = False) -> pb.Record:
        """One archived record, with its inclusion proof on request."""
        record: pb.Record = self._stub.GetRecord(
            pb.GetRecordRequest(record_id=record_id, include_proof=include_proof),
            timeout=self._timeout,
        )
        return record

    def get_checkpoint(self, size: int = 0) -> pb.SignedCheckpoint:
        """The archive's signed checkpoint at ``size`` (0: the latest)."""
        checkpoint: pb.SignedCheckpoint = self._stub.GetCheckpoint(
            pb.GetCheckpointRequest(size=size), timeout=self._timeout
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
        response: pb.ListRecordsResponse = self._stub.ListRecords(
            pb.ListRecordsRequest(
                model_id=model_id,
                decision_id=decision_id,
                since=_timestamp(since),
                until=_timestamp(until),
                page_size=page_size,
                page_token=page_token,
            ),
            timeout=self._timeout,
        )
        return response

    def list_models(self) -> list[pb.ModelInfo]:
        """The models the server explains, then those it could not load (available False)."""
        response: pb.ListModelsResponse = self._stub.ListModels(
            pb.ListModelsRequest(), timeout=self._timeout
        )
        return list(response.models)

    def get_model(self, model_id: str) -> pb.ModelInfo:
        """One model's schema and decision rule."""
        info: pb.ModelInfo = self._stub.GetModel(
            pb.GetModelRequest(model_id=model_id), timeout=self._timeout
        )
        return info

    def reload_models(self) -> pb.ReloadModelsResponse:
        """Has the server reread its model directory; says what changed."""
        report: pb.ReloadModelsResponse = self._stub.ReloadModels(
            pb.ReloadModelsRequest(), timeout=self._timeout
        )
        return report

    def place_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Places a legal hold on a record (a signed log event naming this caller)."""
        event: pb.RecordEvent = self._stub.PlaceHold(
            pb.PlaceHoldRequest(record_id=record_id, reason=reason), timeout=self._timeout
        )
        return event

    def release_hold(self, record_id: str, reason: str) -> pb.RecordEvent:
        """Releases a record's legal hold (a signed log event naming the hold)."""
        event: pb.RecordEvent = self._stub.ReleaseHold(
            pb.ReleaseHoldRequest(record_id=record_id, reason=reason), timeout=self._timeout
        )
        return event

    def expire_records(self, record_ids: list[str], reason: str = "") -> list[pb.RecordEvent]:
        """Expires the named records (none named: every one due); returns the tombstones."""
        response: pb.ExpireRecordsResponse = self._stub.ExpireRecords(
            pb.ExpireRecordsRequest(record_ids=record_ids, reason=reason), timeout=self._timeout
        )
        return list(response.tombstones)

    def record_history(self, record_id: str) -> list[pb.RecordEvent]:
        """The events on a record, oldest first."""
        history: pb.RecordHistory = self._stub.GetRecordHistory(
            pb.GetRecordHistoryRequest(record_id=record_id), timeout=self._timeout
        )
        return list(history.events)

    def access_log(
        self, after_seq: int = 0, page_size: int = 0, record_id: str = ""
    ) -> pb.ListAccessLogResponse:
        """One page of the access log after entry ``after_seq`` (only reads of ``record_id``)."""
        response: pb.ListAccessLogResponse = self._stub.ListAccessLog(
            pb.ListAccessLogRequest(after_seq=after_seq, page_size=page_size, record_id=record_id),
            timeout=self._timeout,
        )
        return response
