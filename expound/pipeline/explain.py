"""The explain pipeline, stage by stage: validate -> decide -> plan -> facts -> draft ->
rank -> select -> archive. No gRPC here.

The servicer converts messages and calls this; everything a decision's record holds is
decided here, in this order, and the answer exists only once its record is committed.
Each stage is one call, timed under its name in the answer's ``timings``.

Calls are admitted first (:mod:`expound.pipeline.admission`): beyond the bounds a call is
shed at once. A caller that goes away cancels its call wherever it is (the LLM request
is dropped); a call with less than ``MIN_COMMIT_S`` of its deadline left when its record
is ready is shed rather than committed, so that a record is not written for an answer
nobody is waiting for.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from expound.archive.records import StoredRecord
from expound.archive.store import ArchiveStore, DuplicateIdempotencyKey
from expound.domain import Audience, Candidate, ExplainRequest, Explanation, ResolvedRequest
from expound.errors import FieldViolation, IdempotencyConflict, InvalidRequest, Overloaded
from expound.explainers.decision import decide
from expound.explainers.facts import decision_facts
from expound.explainers.plan import plan_decision
from expound.generators.deterministic import GENERATOR_ID, deterministic_explanation
from expound.generators.drafting import Drafter
from expound.models.registry import ModelRegistry, ServedModel
from expound.models.validation import feature_violations
from expound.pipeline.admission import Admission, Ticket
from expound.pipeline.record import build_record, request_fingerprint
from expound.pipeline.selection import Selection, select
from expound.rankers.base import Ranker
from expound.times import utc_now

MAX_ID_CHARS = 200
MAX_FEATURES = 1000
# Records are RFC 8785 JSON, whose integers must be exact as IEEE doubles.
MAX_SEED = 2**53 - 1
# The least time left on the caller's deadline for which a record is committed.
MIN_COMMIT_S = 0.05


@dataclass(frozen=True)
class PipelineConfig:
    """The settings the pipeline needs (taken from ``Settings`` in main)."""

    service_version: str
    default_candidates: int
    max_candidates: int
    default_seed: int
    additivity_tolerance: float
    max_question_chars: int
    max_concurrent_explains: int = 64
    # Calls drafting at once: on the LLM plus waiting for it.
    max_llm_calls: int = 64
    retry_after_s: float = 1.0


class Pipeline:
    """Explains decisions: runs the stages and commits each answer's record."""

    def __init__(
        self,
        registry: ModelRegistry,
        archive: ArchiveStore,
        config: PipelineConfig,
        drafter: Drafter | None = None,
        ranker: Ranker | None = None,
    ) -> None:
        if (drafter is None) != (ranker is None):
            raise ValueError("drafting and ranking run together or not at all")
        self._registry = registry
        self._archive = archive
        self._config = config
        self._drafter = drafter
        self._ranker = ranker
        self.admission = Admission(
            config.max_concurrent_explains, config.max_llm_calls, config.retry_after_s
        )

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
        if request.drafting_seed > MAX_SEED:
            violations.append(FieldViolation("seed", f"at most {MAX_SEED}"))
        if len(request.features) > MAX_FEATURES:
            violations.append(FieldViolation("features", f"more than {MAX_FEATURES} entries"))
        return violations

    def _validated_model(self, request: ExplainRequest) -> ServedModel:
        violations = self._request_violations(request)
        if violations:
            raise InvalidRequest("invalid request", violations)
        model = self._registry.get(request.model_id)
        violations = feature_violations(model.manifest, request.features)
        if violations:
            raise InvalidRequest(
                f"{len(violations)} invalid feature(s) for model {request.model_id}", violations
            )
        return model

    def _resolved(self, request: ExplainRequest) -> ResolvedRequest:
        """The request's unspecified values, filled in from the defaults."""
        return ResolvedRequest(
            audience=request.audience or Audience.APPLICANT,
            num_candidates=request.num_candidates or self._config.default_candidates,
            drafting_seed=request.drafting_seed or self._config.default_seed,
        )

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

        Raises:
            Overloaded: shed at admission, or too little of the deadline left to commit.
        """
        with self.admission.admitted(drafts=self._drafter is not None) as ticket:
            return await self._explain(request, time_left_s, ticket)

    async def _explain(
        self, request: ExplainRequest, time_left_s: float | None, ticket: Ticket
    ) -> Explanation:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        model = self._validated_model(request)
        if request.idempotency_key:
            stored = await self._archive.find_by_idempotency_key(request.idempotency_key)
            if stored is not None:
                return await self._replay(request, stored)
        resolved = self._resolved(request)
        timings["validate"] = (time.perf_counter() - started) * 1000

        decision = await asyncio.to_thread(
            decide, model, request.features, self._config.additivity_tolerance
        )
        timings.update(decision.timings_ms)
        manifest = model.manifest

        mark = time.perf_counter()
        plan = await asyncio.to_thread(
            plan_decision, model, request.features, decision, resolved.audience
        )
        timings["plan"] = (time.perf_counter() - mark) * 1000
        mark = time.perf_counter()
        facts = decision_facts(manifest, decision, resolved.audience, request.question, plan)
        timings["facts"] = (time.perf_counter() - mark) * 1000

        selection: Selection | None = None
        if self._drafter is not None and self._ranker is not None:
            mark = time.perf_counter()
            drafting = await self._drafter.draft(
                facts,
                n=resolved.num_candidates,
                drafting_seed=resolved.drafting_seed,
                time_left_s=None if time_left_s is None else time_left_s - (mark - started),
                calls_beside=self.admission.in_flight - 1,
            )
            ticket.drafting_done()
            timings["draft"] = (time.perf_counter() - mark) * 1000
            mark = time.perf_counter()
            ranked = await self._ranker.rank(facts, drafting.drafts)
            timings["rank"] = (time.perf_counter() - mark) * 1000
            selection = select(drafting, ranked, self._ranker.name)
        candidates = list(selection.candidates) if selection else []
        selected = selection.selected if selection else None
        if selected is None:
            # The deterministic explanation is the explanation of record when drafting is
            # off, failed, or produced nothing faithful.
            selected = Candidate(
                text=deterministic_explanation(facts),
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
            audience=resolved.audience,
            prediction=decision.prediction,
            attributions=decision.attributions,
            principal_reasons=decision.principal_reasons,
            candidates=candidates,
            selected=selected,
            fallback=bool(selection and selection.fallback_reason),
            fallback_reason=selection.fallback_reason if selection else "",
            timings_ms=timings,
            created_at=utc_now(),
            drafting=selection.record if selection else None,
        )
        mark = time.perf_counter()
        if time_left_s is not None and time_left_s - (mark - started) < MIN_COMMIT_S:
            raise Overloaded(
                "server busy: no time left to answer inside the deadline; "
                f"retry in {self._config.retry_after_s:g} s",
                self._config.retry_after_s,
            )
        record = build_record(
            request, resolved, explanation, self._config.service_version, plan=plan
        )
        try:
            await self._archive.append(record)
        except DuplicateIdempotencyKey:
            stored = await self._archive.find_by_idempotency_key(request.idempotency_key)
            assert stored is not None
            return await self._replay(request, stored)
        timings["archive"] = (time.perf_counter() - mark) * 1000
        # The archived record holds the timings up to the commit; the answer adds its cost.
        return explanation.model_copy(update={"timings_ms": dict(timings)})
