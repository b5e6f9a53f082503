"""The ExplainService servicer: converts messages, calls the pipeline, converts back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from expound.calling import (
    current_principal,
    current_request_id,
    own_records_only_var,
    what_if_allowed_var,
)
from expound.errors import FieldViolation, InvalidRequest, PermissionDenied, ServiceError
from expound.models.registry import ModelRegistry, ServedModel, UnavailableModel
from expound.pipeline.batch import in_order
from expound.pipeline.explain import MAX_ID_CHARS, Pipeline
from expound.pipeline.records import Caller, RecordService
from expound.server import convert
from expound.server.auth import AccessRefusal
from expound.server.errors import internal_status, log_service_error, status_for
from expound.server.reloading import ModelReloader
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc

log = logging.getLogger("expound.server")


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    """gRPC adapter over :class:`Pipeline`."""

    def __init__(
        self,
        pipeline: Pipeline,
        records: RecordService,
        registry: ModelRegistry,
        reloader: ModelReloader,
        batch_in_flight: int = 8,
    ) -> None:
        self._pipeline = pipeline
        self._records = records
        self._registry = registry
        self._reloader = reloader
        self._batch_in_flight = batch_in_flight

    async def _explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        if request.what_if and not what_if_allowed_var.get():
            # The reason rides as the cause, logged by the call guard, never sent.
            raise PermissionDenied() from AccessRefusal(
                f"what_if asked by principal {current_principal()!r}, whose roles do not "
                "grant what_if"
            )
        explanation = await self._pipeline.explain(
            convert.explain_request_from_pb(request),
            time_left_s=context.time_remaining(),
            request_id=current_request_id(),
            principal=current_principal(),
            what_if=request.what_if,
        )
        return convert.explanation_to_pb(explanation, archived=not request.what_if)

    async def Explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        return await self._explain(request, context)

    async def ExplainBatch(
        self, requests: AsyncIterator[pb.BatchItem], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.BatchResult]:
        seen: set[str] = set()

        async def item_result(item: pb.BatchItem) -> pb.BatchResult:
            # Each item's failure is its result, with the status its unary call would have.
            try:
                if not item.item_id or len(item.item_id) > MAX_ID_CHARS:
                    problem = "required" if not item.item_id else f"longer than {MAX_ID_CHARS}"
                    raise InvalidRequest("invalid item", [FieldViolation("item_id", problem)])
                if item.item_id in seen:
                    raise InvalidRequest(
                        f"item id {item.item_id!r} already used in this call",
                        [FieldViolation("item_id", "not unique within the call")],
                    )
                seen.add(item.item_id)
                response = await self._explain(item.request, context)
                return pb.BatchResult(item_id=item.item_id, response=response)
            except ServiceError as error:
                log_service_error(error, current_request_id())
                failed = status_for(error, current_request_id())
            except Exception:
                log.exception(
                    "unexpected error, request id %s item %r", current_request_id(), item.item_id
                )
                failed = internal_status(current_request_id())
            return pb.BatchResult(item_id=item.item_id, error=failed)

        async for result in in_order(requests, item_result, self._batch_in_flight):
            yield result

    async def GetRecord(
        self, request: pb.GetRecordRequest, context: grpc.aio.ServicerContext
    ) -> pb.Record:
        record, proof = await self._records.get_record(
            request.record_id, request.include_proof, _caller()
        )
        return convert.record_to_pb(record, proof)

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConsistencyProof:
        proof = await self._records.consistency(request.old_size, request.new_size)
        return convert.consistency_proof_to_pb(proof)

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignedCheckpoint:
        return convert.checkpoint_to_pb(await self._records.checkpoint(request.size))

    async def ListRecords(
        self, request: pb.ListRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecordsResponse:
        page = await self._records.list_records(
            convert.record_filter_from_pb(request),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListRecordsResponse(
            records=[convert.summary_to_pb(r) for r in page.records],
            next_page_token=page.next_page_token,
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        models: list[ServedModel | UnavailableModel] = [
            *self._registry.all(),
            *self._registry.unavailable(),
        ]
        return pb.ListModelsResponse(models=[convert.model_status_to_pb(m) for m in models])

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        if not request.model_id:
            raise InvalidRequest("invalid request", [FieldViolation("model_id", "required")])
        return convert.model_status_to_pb(self._registry.describe(request.model_id))

    async def ReloadModels(
        self, request: pb.ReloadModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadModelsResponse:
        return convert.reload_report_to_pb(await self._reloader.reload())

    async def PlaceHold(
        self, request: pb.PlaceHoldRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordEvent:
        event = await self._records.place_hold(
            request.record_id, request.reason, current_principal()
        )
        return convert.event_to_pb(event)

    async def ReleaseHold(
        self, request: pb.ReleaseHoldRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordEvent:
        event = await self._records.release_hold(
            request.record_id, request.reason, current_principal()
        )
        return convert.event_to_pb(event)

    async def ExpireRecords(
        self, request: pb.ExpireRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExpireRecordsResponse:
        report = await self._records.expire(
            list(request.record_ids), request.reason, current_principal()
        )
        return pb.ExpireRecordsResponse(
            tombstones=[convert.event_to_pb(t) for t in report.tombstones]
        )

    async def GetRecordHistory(
        self, request: pb.GetRecordHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordHistory:
        events = await self._records.history(request.record_id)
        return pb.RecordHistory(events=[convert.event_to_pb(e) for e in events])

    async def ListAccessLog(
        self, request: pb.ListAccessLogRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAccessLogResponse:
        entries, after = await self._records.access_log(
            request.after_seq, request.page_size, request.record_id
        )
        return pb.ListAccessLogResponse(
            entries=[convert.access_entry_to_pb(e) for e in entries], next_after_seq=after
        )


def _caller() -> Caller:
    """The call being served, as the access log records it."""
    return Caller(current_principal(), current_request_id(), own_records_only_var.get())
