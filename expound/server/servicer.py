"""The ExplainService servicer: converts messages, calls the pipeline, converts back."""

from __future__ import annotations

import grpc

from expound.errors import FieldViolation, InvalidRequest
from expound.pipeline.explain import Pipeline
from expound.pipeline.records import RecordService
from expound.server import convert
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    """gRPC adapter over :class:`Pipeline`."""

    def __init__(
        self, pipeline: Pipeline, records: RecordService, explainer_names: dict[str, str]
    ) -> None:
        self._pipeline = pipeline
        self._records = records
        self._explainer_names = explainer_names

    async def Explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        explanation = await self._pipeline.explain(
            convert.explain_request_from_pb(request), time_left_s=context.time_remaining()
        )
        return convert.explanation_to_pb(explanation)

    async def GetRecord(
        self, request: pb.GetRecordRequest, context: grpc.aio.ServicerContext
    ) -> pb.Record:
        record, proof = await self._records.get_record(request.record_id, request.include_proof)
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
            convert.record_filter_from_pb(request), request.page_size, request.page_token
        )
        return pb.ListRecordsResponse(
            records=[convert.summary_to_pb(r) for r in page.records],
            next_page_token=page.next_page_token,
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[self._model_info(m.manifest.model_id) for m in self._pipeline.registry.all()]
        )

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        if not request.model_id:
            raise InvalidRequest("invalid request", [FieldViolation("model_id", "required")])
        return self._model_info(request.model_id)

    def _model_info(self, model_id: str) -> pb.ModelInfo:
        model = self._pipeline.registry.get(model_id)
        return convert.model_to_pb(model.manifest, self._explainer_names[model_id])
