"""The ExplainService servicer: converts messages, calls the pipeline, converts back."""

from __future__ import annotations

import grpc

from expound.calling import current_principal, current_request_id, own_records_only_var
from expound.errors import FieldViolation, InvalidRequest
from expound.models.registry import ModelRegistry, ServedModel, UnavailableModel
from expound.pipeline.explain import Pipeline
from expound.pipeline.records import Caller, RecordService
from expound.server import convert
from expound.server.reloading import ModelReloader
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    """gRPC adapter over :class:`Pipeline`."""

    def __init__(
        self,
        pipeline: Pipeline,
        records: RecordService,
        registry: ModelRegistry,
        reloader: ModelReloader,
    ) -> None:
        self._pipeline = pipeline
        self._records = records
        self._registry = registry
        self._reloader = reloader

    async def Explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        explanation = await self._pipeline.explain(
            convert.explain_request_from_pb(request),
            time_left_s=context.time_remaining(),
            request_id=current_request_id(),
            principal=current_principal(),
        )
        return convert.explanation_to_pb(explanation)

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
