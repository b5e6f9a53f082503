"""The explain pipeline: validate, attribute, reason, write, archive. No gRPC here.

The servicer converts messages and calls this; everything a decision's record holds is
decided here, in this order, and the answer exists only once its record is committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from expound.archive.records import StoredRecord, build_record, request_fingerprint
from expound.archive.store import ArchiveStore, DuplicateIdempotencyKey
from expound.domain import Candidate, ExplainRequest, Explanation
from expound.errors import FieldViolation, IdempotencyConflict, InvalidRequest
from expound.explainers.base import Explainer, attribute
from expound.explainers.facts import decision_facts
from expound.explainers.reasons import predict, principal_reasons
from expound.generators.deterministic import GENERATOR_ID, deterministic_explanation
from expound.generators.drafting import Drafter, DraftingOutcome
from expound.models.registry import LoadedModel, ModelRegistry
from expound.models.validation import feature_violations
from expound.times import utc_now

MAX_ID_CHARS = 200
MAX_FEATURES = 1000
# Records are RFC 8785 JSON, whose integers must be exact as IEEE doubles.
MAX_SEED = 2**53 - 1


@dataclass(frozen=True)
class PipelineConfig:
    """The settings the pipeline needs (taken from ``Settings`` in main)."""

    service_version: str
    default_candidates: int
    max_candidates: int
    default_seed: int
    additivity_tolerance: float
    max_question_chars: int


class Pipeline:
    """Explains decisions and serves the archive."""

    def __init__(
        self,
        registry: ModelRegistry,
        explainers: dict[str, Explainer],
        archive: ArchiveStore,
        config: PipelineConfig,
        drafter: Drafter | None = None,
    ) -> None:
        self.registry = registry
        self._explainers = explainers
        self._archive = archive
        self._config = config
        self._drafter = drafter

    def _request_violations(self, request: ExplainRequest) -> list[FieldViolation]:
        config = self._config
        violations = []
        if not request.model_id:
            violations.append(FieldViolation("model_id", "required"))
        elif len(request.model_id) > MAX_ID_CHARS:
            violations.append(FieldViolation("model_id", f"longer than {MAX_ID_CHARS} characters"))
        if len(request.question) > config.max_question_chars:
            violations.append(
                FieldViolation("question", f"longer than {config.max_question_chars} characters")
            )
        for name in ("decision_id", "idempotency_key"):
            if len(getattr(request, name)) > MAX_ID_CHARS:
                violations.append(FieldViolation(name, f"longer than {MAX_ID_CHARS} characters"))
        if request.num_candidates > config.max_candidates:
            violations.append(FieldViolation("num_candidates", f"at most {config.max_candidates}"))
        if request.seed > MAX_SEED:
            violations.append(FieldViolation("seed", f"at most {MAX_SEED}"))
        if len(request.features) > MAX_FEATURES:
            violations.append(FieldViolation("features", f"more than {MAX_FEATURES} entries"))
        return violations

    def _validated_model(self, request: ExplainRequest) -> LoadedModel:
        violations = self._request_violations(request)
        if violations:
            raise InvalidRequest("invalid request", violations)
        model = self.registry.get(request.model_id)
        violations = feature_violations(model.manifest, request.features)
        if violations:
            raise InvalidRequest(
                f"{len(violations)} invalid feature(s) for model {request.model_id}", violations
            )
        return model

    async def _replay(self, request: ExplainRequest, stored: StoredRecord) -> Explanation:
        if stored.request_sha256 != request_fingerprint(request):
            raise IdempotencyConflict(
                f"idempotency key {request.idempotency_key!r} was used for a different request "
                f"(record {stored.record_id}); use a new key for a new request"
            )
        return stored.explanation()

    async def explain(
        self, request: ExplainRequest, time_left_s: float | None = None
    ) -> Explanation:
        """Explains one decision and commits its record before returning it.

        Args:
            request: the decision to explain.
            time_left_s: what is left of the caller's deadline; the LLM gets this, less a
                reserve for ranking and archiving. None: the LLM timeout from settings.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        model = self._validated_model(request)
        if request.idempotency_key:
            stored = await self._archive.find_by_idempotency_key(request.idempotency_key)
            if stored is not None:
                return await self._replay(request, stored)
        timings["validate"] = (time.perf_counter() - started) * 1000

        mark = time.perf_counter()
        attributions = await asyncio.to_thread(
            attribute,
            model,
            self._explainers[model.manifest.model_id],
            request.features,
            self._config.additivity_tolerance,
        )
        timings["attribute"] = (time.perf_counter() - mark) * 1000

        mark = time.perf_counter()
        manifest = model.manifest
        prediction = predict(manifest, attributions.model_output)
        reasons = principal_reasons(manifest, attributions, prediction)
        timings["reasons"] = (time.perf_counter() - mark) * 1000

        outcome = DraftingOutcome()
        if self._drafter is not None:
            mark = time.perf_counter()
            facts = decision_facts(
                manifest, prediction, attributions, reasons, request.audience, request.question
            )
            outcome = await self._drafter.draft(
                facts,
                n=request.num_candidates or self._config.default_candidates,
                seed=request.seed or self._config.default_seed,
                time_left_s=None if time_left_s is None else time_left_s - (mark - started),
            )
            timings["draft_and_rank"] = (time.perf_counter() - mark) * 1000
        candidates = list(outcome.candidates)
        selected = outcome.selected
        if selected is None:
            # The deterministic explanation is the explanation of record when drafting is
            # off, failed, or produced nothing faithful.
            selected = Candidate(
                text=deterministic_explanation(
                    manifest, prediction, attributions, reasons, request.audience
                ),
                rank=len(candidates) + 1,
                deterministic=True,
                faithful=True,
                generator=GENERATOR_ID,
            )
            candidates.append(selected)

        explanation = Explanation(
            record_id=str(uuid.uuid4()),
            model_id=manifest.model_id,
            model_version=manifest.version,
            artifact_sha256=manifest.artifact_sha256,
            decision_id=request.decision_id,
            audience=request.audience,
            prediction=prediction,
            attributions=attributions,
            principal_reasons=reasons,
            candidates=candidates,
            selected=selected,
            fallback=bool(outcome.fallback_reason),
            fallback_reason=outcome.fallback_reason,
            timings_ms=timings,
            created_at=utc_now(),
            drafting=outcome.record,
        )
        mark = time.perf_counter()
        record = build_record(request, explanation, self._config.service_version)
        try:
            await self._archive.append(record)
        except DuplicateIdempotencyKey:
            stored = await self._archive.find_by_idempotency_key(request.idempotency_key)
            assert stored is not None
            return await self._replay(request, stored)
        timings["archive"] = (time.perf_counter() - mark) * 1000
        # The archived record holds the timings up to the commit; the answer adds its cost.
        return explanation.model_copy(update={"timings_ms": dict(timings)})
