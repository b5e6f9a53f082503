"""The JSON endpoints: one per RPC of ``expound.v1.ExplainService`` (ExplainBatch aside:
its streaming has no plain-JSON equivalent; send one Explain per decision).

Like the gRPC servicer, an endpoint converts, calls the one pipeline or record service the
server built, and converts back; the policy checks the RPC it names (:class:`Guard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.security import HTTPBearer
from pydantic import AwareDatetime

from expound.archive.engine import MAX_ACCESS_PAGE, MAX_PAGE_SIZE
from expound.archive.store import RecordFilter
from expound.domain import ExplainRequest
from expound.errors import PermissionDenied, StatusCode
from expound.models.registry import ModelRegistry, ServedModel, UnavailableModel
from expound.pipeline.explain import MAX_ID_CHARS, Pipeline
from expound.pipeline.records import MAX_SIZE, RecordService
from expound.server.auth import AccessRefusal
from expound.server.reloading import ModelReloader
from expound.times import format_utc
from expound.web.errors import documented
from expound.web.guard import Guard, HttpCall
from expound.web.schemas import (
    AccessEntryBody,
    AccessLogBody,
    CheckpointBody,
    ConsistencyProofBody,
    ExpireBody,
    ExpiryBody,
    ExplainAnswer,
    ExplainBody,
    HoldBody,
    ModelBody,
    ModelListBody,
    RecordBody,
    RecordEventBody,
    RecordHistoryBody,
    RecordListBody,
    RecordSummaryBody,
    ReloadBody,
)


@dataclass(frozen=True)
class Service:
    """What the HTTP face serves: the very objects the gRPC server built."""

    pipeline: Pipeline
    records: RecordService
    registry: ModelRegistry
    reloader: ModelReloader
    guard: Guard
    log_key: Ed25519PublicKey | None = None  # checks the checkpoints; shown by record pages


def service_of(request: Request) -> Service:
    """The service the app was built over."""
    service: Service = request.app.state.service
    return service


def rpc(name: str) -> object:
    """A dependency admitting the call to RPC ``name`` (401/403 before the body is read)."""

    async def admitted(request: Request) -> HttpCall:
        return service_of(request).guard.admit(request, name)

    return Depends(admitted)


RecordId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)]
Size = Annotated[int, Query(ge=0, le=MAX_SIZE)]

# The bearer token in the OpenAPI document (Swagger UI's "Authorize" then sends it). It
# never refuses a call: the guard reads and checks the header itself, per RPC.
BEARER = HTTPBearer(
    auto_error=False, description="A static token of the tokens file, or a JWT of the issuer."
)
router = APIRouter(prefix="/v1", tags=["expound"], dependencies=[Security(BEARER)])


@router.post(
    "/explain",
    responses=documented(
        StatusCode.NOT_FOUND,
        StatusCode.ALREADY_EXISTS,
        StatusCode.RESOURCE_EXHAUSTED,
    ),
    summary="Explain one decision (archived unless what_if)",
)
async def explain(
    body: ExplainBody,
    request: Request,
    call: Annotated[HttpCall, rpc("Explain")],
) -> ExplainAnswer:
    """Explains one decision; its record is committed to the archive before the answer."""
    if body.what_if and not call.what_if_allowed:
        raise PermissionDenied() from AccessRefusal(
            f"what_if asked by principal {call.principal!r}, whose roles do not grant what_if"
        )
    explanation = await service_of(request).pipeline.explain(
        ExplainRequest(
            model_id=body.model_id,
            features=body.features,
            question=body.question,
            audience=body.audience,
            decision_id=body.decision_id,
            idempotency_key=body.idempotency_key,
            num_candidates=body.num_candidates,
            drafting_seed=body.seed,
        ),
        request_id=call.request_id,
        principal=call.principal,
        what_if=body.what_if,
    )
    return ExplainAnswer(**explanation.model_dump(), archived=not body.what_if)


@router.get("/records/{record_id}", responses=documented(StatusCode.NOT_FOUND))
async def get_record(
    record_id: RecordId,
    request: Request,
    call: Annotated[HttpCall, rpc("GetRecord")],
    include_proof: bool = False,
) -> RecordBody:
    """One archived record, byte for byte, with its inclusion proof on request."""
    record, proof = await service_of(request).records.get_record(
        record_id, include_proof, call.caller
    )
    return RecordBody.of(record, proof)


@router.get("/records", responses=documented())
async def list_records(
    request: Request,
    call: Annotated[HttpCall, rpc("ListRecords")],
    model_id: Annotated[str, Query(max_length=MAX_ID_CHARS)] = "",
    decision_id: Annotated[str, Query(max_length=MAX_ID_CHARS)] = "",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    page_size: Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)] = 0,
    page_token: Annotated[str, Query(max_length=32)] = "",
) -> RecordListBody:
    """Records newest first, by model, decision id and creation time (since inclusive)."""
    where = RecordFilter(
        model_id=model_id, decision_id=decision_id, since=_utc(since), until=_utc(until)
    )
    page = await service_of(request).records.list_records(where, page_size, page_token, call.caller)
    return RecordListBody(
        records=[RecordSummaryBody.of(record) for record in page.records],
        next_page_token=page.next_page_token,
    )


def _utc(moment: datetime | None) -> str:
    return format_utc(moment) if moment is not None else ""


@router.get("/checkpoint", responses=documented())
async def get_checkpoint(
    request: Request, call: Annotated[HttpCall, rpc("GetCheckpoint")], size: Size = 0
) -> CheckpointBody:
    """The signed checkpoint at ``size`` (0: the latest)."""
    return CheckpointBody.of(await service_of(request).records.checkpoint(size))


@router.get("/consistency-proof", responses=documented())
async def get_consistency_proof(
    request: Request,
    call: Annotated[HttpCall, rpc("GetConsistencyProof")],
    old_size: Size = 0,
    new_size: Size = 0,
) -> ConsistencyProofBody:
    """Proof that the checkpoint at ``old_size`` is a prefix of the one at ``new_size``."""
    proof = await service_of(request).records.consistency(old_size, new_size)
    return ConsistencyProofBody.of(proof)


@router.get("/models", responses=documented())
async def list_models(
    request: Request, call: Annotated[HttpCall, rpc("ListModels")]
) -> ModelListBody:
    """Every model directory: the served models and the unavailable ones with why."""
    registry = service_of(request).registry
    models: list[ServedModel | UnavailableModel] = [*registry.all(), *registry.unavailable()]
    return ModelListBody(models=[ModelBody.of(model) for model in models])


@router.get("/models/{model_id}", responses=documented(StatusCode.NOT_FOUND))
async def get_model(
    model_id: RecordId, request: Request, call: Annotated[HttpCall, rpc("GetModel")]
) -> ModelBody:
    """One model's schema and decision rule, or why it is unavailable."""
    return ModelBody.of(service_of(request).registry.describe(model_id))


@router.post("/models/reload", responses=documented(StatusCode.FAILED_PRECONDITION))
async def reload_models(
    request: Request, call: Annotated[HttpCall, rpc("ReloadModels")]
) -> ReloadBody:
    """Rereads the model directory (as SIGHUP does)."""
    return ReloadBody.of(await service_of(request).reloader.reload())


@router.post(
    "/records/{record_id}/hold",
    responses=documented(StatusCode.NOT_FOUND, StatusCode.FAILED_PRECONDITION),
)
async def place_hold(
    record_id: RecordId,
    body: HoldBody,
    request: Request,
    call: Annotated[HttpCall, rpc("PlaceHold")],
) -> RecordEventBody:
    """Places a legal hold: a signed log event naming the caller."""
    event = await service_of(request).records.place_hold(record_id, body.reason, call.principal)
    return RecordEventBody.of(event)


@router.post(
    "/records/{record_id}/release",
    responses=documented(StatusCode.NOT_FOUND, StatusCode.FAILED_PRECONDITION),
)
async def release_hold(
    record_id: RecordId,
    body: HoldBody,
    request: Request,
    call: Annotated[HttpCall, rpc("ReleaseHold")],
) -> RecordEventBody:
    """Releases the record's legal hold: a signed log event naming the caller."""
    event = await service_of(request).records.release_hold(record_id, body.reason, call.principal)
    return RecordEventBody.of(event)


@router.post("/expiry", responses=documented(StatusCode.NOT_FOUND, StatusCode.FAILED_PRECONDITION))
async def expire_records(
    body: ExpireBody, request: Request, call: Annotated[HttpCall, rpc("ExpireRecords")]
) -> ExpiryBody:
    """Expires the named records' payloads (none named: every record now due)."""
    report = await service_of(request).records.expire(body.record_ids, body.reason, call.principal)
    return ExpiryBody(tombstones=[RecordEventBody.of(t) for t in report.tombstones])


@router.get("/records/{record_id}/history", responses=documented(StatusCode.NOT_FOUND))
async def get_record_history(
    record_id: RecordId, request: Request, call: Annotated[HttpCall, rpc("GetRecordHistory")]
) -> RecordHistoryBody:
    """The holds, releases and tombstone of a record, oldest first."""
    events = await service_of(request).records.history(record_id)
    return RecordHistoryBody(events=[RecordEventBody.of(e) for e in events])


@router.get("/access-log", responses=documented())
async def list_access_log(
    request: Request,
    call: Annotated[HttpCall, rpc("ListAccessLog")],
    after_seq: Size = 0,
    page_size: Annotated[int, Query(ge=0, le=MAX_ACCESS_PAGE)] = 0,
    record_id: Annotated[str, Query(max_length=MAX_ID_CHARS)] = "",
) -> AccessLogBody:
    """Who read which records: a page of the access log after entry ``after_seq``."""
    entries, after = await service_of(request).records.access_log(after_seq, page_size, record_id)
    return AccessLogBody(entries=[AccessEntryBody.of(e) for e in entries], next_after_seq=after)
