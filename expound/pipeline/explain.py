"""The explain pipeline, stage by stage: validate -> decide -> plan -> facts -> draft ->
rank -> select -> archive. No gRPC here.

The servicer converts messages and calls this; everything a decision's record holds is
decided here, in this order, and the answer exists only once its record is committed.
Each stage is one call, timed under its name in the answer's ``timings``, and reported to
the pipeline's observer (:mod:`expound.observability.hooks`: a span per stage, metrics per
answer; nothing by default). The pipeline itself imports no metrics or tracing library.

Calls are admitted first (:mod:`expound.pipeline.admission`): beyond the bounds a call is
shed at once. A caller that goes away cancels its call wherever it is (the LLM request
is dropped); a call with less than ``MIN_COMMIT_S`` of its deadline left when its record
is ready is shed rather than committed, so that a record is not written for an answer
nobody is waiting for.

A what-if call (an analyst exploring) runs every stage but the archive: no record, no
idempotency, an empty record id. Whether the caller may ask for one is the server's check.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from expound.archive.records import StoredRecord
from expound.archive.store import ArchiveStore, DuplicateIdempotencyKey
from expound.domain import (
    ANONYMOUS,
    Audience,
    Candidate,
    ExplainRequest,
    Explanation,
    FeatureScalar,
    ResolvedRequest,
)
from expound.errors import FieldViolation, IdempotencyConflict, InvalidRequest, Overloaded
from expound.explainers.decision import Decision, decide
from expound.explainers.facts import DecisionFacts, decision_facts
from expound.explainers.plan import ContentPlan, plan_decision
from expound.generators.deterministic import GENERATOR_ID, deterministic_explanation
from expound.generators.drafting import Drafter
from expound.models.registry import ModelRegistry, ServedModel
from expound.models.validation import feature_violations
from expound.observability.hooks import NO_OBSERVER, SHED_DEADLINE, Observer
from expound.pipeline.admission import Admission, Ticket
from expound.pipeline.planned import PlannedExplanation, stored_plan
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
P = ParamSpec("P")
R = TypeVar("R")
_log = logging.getLogger(__name__)
_UNTRACED: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


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


class RankingAhead:
    """The ranker's preparation (:meth:`Ranker.prepare`), run while the LLM drafts: the
    decision's own texts at once, then each draft as soon as it is finished, so that the
    rank stage is left with the work of the last draft only.

    Preparation is an optimisation: its failures are logged and ignored (ranking does the
    work itself), and it is cancelled with the call.
    """

    def __init__(self, ranker: Ranker, facts: DecisionFacts) -> None:
        self._ranker = ranker
        self._facts = facts
        self._tasks: list[asyncio.Task[None]] = []
        self._start([])

    def _start(self, texts: list[str]) -> None:
        self._tasks.append(asyncio.ensure_future(self._ranker.prepare(self._facts, texts)))

    def drafted(self, text: str) -> None:
        """A draft is finished: prepare for it (empty texts are skipped)."""
        if text.strip():
            self._start([text])

    async def settled(self) -> None:
        """Waits for every preparation started so far; failures are logged, not raised."""
        for outcome in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                _log.warning("ranking preparation failed (ranking does it): %r", outcome)

    def cancel(self) -> None:
        """Stops what is still running (the call failed or went away)."""
        for task in self._tasks:
            task.cancel()


class Pipeline:
    """Explains decisions: runs the stages and commits each answer's record."""

    def __init__(
        self,
        registry: ModelRegistry,
        archive: ArchiveStore,
        config: PipelineConfig,
        drafter: Drafter | None = None,
        ranker: Ranker | None = None,
        observer: Observer = NO_OBSERVER,
        cpu_pool: Executor | None = None,
    ) -> None:
        """Wires the stages.

        Args:
            cpu_pool: Where SHAP and the content plan run, off the event loop; None: the
                loop's default executor (which the SQLite archive's thread hops share).
        """
        if (drafter is None) != (ranker is None):
            raise ValueError("drafting and ranking run together or not at all")
        self._registry = registry
        self._archive = archive
        self._config = config
        self._drafter = drafter
        self._ranker = ranker
        self._observer = observer
        self._cpu_pool = cpu_pool
        self.admission = Admission(
            config.max_concurrent_explains, config.max_llm_calls, config.retry_after_s, observer
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
        return PlannedExplanation(**dict(stored.explanation()), plan=stored_plan(stored))

    async def explain(
        self,
        request: ExplainRequest,
        time_left_s: float | None = None,
        request_id: str = "",
        principal: str = ANONYMOUS,
        what_if: bool = False,
    ) -> Explanation:
        """Explains one decision and commits its record before returning it.

        Args:
            request: the decision to explain.
            principal: the caller; its idempotency keys are its own, and the record
                names it.
            time_left_s: what is left of the caller's deadline; the LLM gets this, less a
                reserve for ranking and archiving (its wait for a slot included, timed as
                ``llm_queue``). None: the LLM timeout from settings.
            request_id: the call's request id, kept in the record.
            what_if: explain without archiving: nothing is committed, the idempotency key
                is ignored, and the answer's record id is empty.

        Raises:
            Overloaded: shed at admission, or too little of the deadline left to commit.
        """
        with self.admission.admitted(drafts=self._drafter is not None) as ticket:
            return await self._explain(request, time_left_s, ticket, request_id, principal, what_if)

    async def warm_up(self) -> float | None:
        """Drafts and ranks one decision so that the first caller does not pay for cold
        caches: the LLM server's structured-output and sampling kernels, the token counts
        of the phrase banks, the second model. It is not a call: nothing is admitted,
        observed or archived.

        The decision is the first row of the first served model's reference sample (every
        model has one), for the default audience. Returns the seconds it took, or None when
        drafting is off, no model is served or it failed (logged: a warm-up never stops
        the service).
        """
        models = self._registry.all()
        if self._drafter is None or self._ranker is None or not models:
            return None
        model, config = models[0], self._config
        started = time.perf_counter()
        try:
            rows = json.loads((model.directory / model.manifest.background).read_bytes())
            features = {spec.name: rows[0].get(spec.name) for spec in model.manifest.features}
            decision = await self._on_cpu(decide, model, features, config.additivity_tolerance)
            plan = await self._on_cpu(plan_decision, model, features, decision, Audience.APPLICANT)
            facts = decision_facts(model.manifest, decision, Audience.APPLICANT, "", plan)
            drafting = await self._drafter.draft(
                facts, config.default_candidates, config.default_seed, time_left_s=None
            )
            if drafting.drafts:
                await self._ranker.rank(facts, drafting.drafts)
        except Exception as error:  # a warm-up must never stop the service
            _log.warning("drafting warm-up failed: %r", error)
            return None
        seconds = time.perf_counter() - started
        _log.info(
            "drafting warmed up in %.1f s on %s (%s)",
            seconds,
            model.manifest.model_id,
            drafting.fallback_reason or f"{len(drafting.drafts)} drafts",
        )
        return seconds

    async def _on_cpu(self, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs CPU-bound ``work`` in the CPU pool, in this call's context (its span)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._cpu_pool, call)

    def _decide_and_plan(
        self, model: ServedModel, features: dict[str, FeatureScalar], audience: Audience
    ) -> tuple[Decision, ContentPlan, float]:
        """The decide and plan stages, one after the other in one trip to the CPU pool
        (each trip is a hand-over to a worker thread and back, about 0.1 ms of CPU); the
        plan's time in milliseconds besides. Each stage is still its own span."""
        with self._observer.stage("decide"):
            decision = decide(model, features, self._config.additivity_tolerance)
        mark = time.perf_counter()
        with self._observer.stage("plan"):
            plan = plan_decision(model, features, decision, audience)
        return decision, plan, (time.perf_counter() - mark) * 1000

    @contextlib.contextmanager
    def _stage(
        self, name: str, timings: dict[str, float] | None = None, traced: bool = True
    ) -> Iterator[None]:
        """One stage: the observer's context around it (a span), its time into ``timings``.

        Only the stages that wait on something are traced: the CPU pool (decide, plan), the
        LLM (draft, rank) and the archive (the idempotency lookup, archive). The stages that
        only compute in the event loop (validate, facts, select) take tens of microseconds,
        about what a span costs, so they are timed (the answer's timings, the stage
        histogram) but get no span of their own.
        """
        mark = time.perf_counter()
        with self._observer.stage(name) if traced else _UNTRACED:
            yield
        if timings is not None:
            timings[name] = (time.perf_counter() - mark) * 1000

    async def _explain(
        self,
        request: ExplainRequest,
        time_left_s: float | None,
        ticket: Ticket,
        request_id: str,
        principal: str,
        what_if: bool,
    ) -> Explanation:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        with self._stage("validate", timings, traced=False):
            model = self._validated_model(request)
            if request.idempotency_key and not what_if:
                with self._observer.stage("idempotency"):
                    stored = await self._archive.find_by_idempotency_key(
                        principal, request.idempotency_key
                    )
                if stored is not None:
                    return await self._replay(request, stored)
            resolved = self._resolved(request)

        decision, plan, plan_ms = await self._on_cpu(
            self._decide_and_plan, model, request.features, resolved.audience
        )
        timings.update(decision.timings_ms)
        timings["plan"] = plan_ms
        manifest = model.manifest
        with self._stage("facts", timings, traced=False):
            facts = decision_facts(manifest, decision, resolved.audience, request.question, plan)

        selection: Selection | None = None
        rejections: list[str] = []
        if self._drafter is not None and self._ranker is not None:
            ahead = RankingAhead(self._ranker, facts)
            try:
                with self._stage("draft", timings):
                    drafting = await self._drafter.draft(
                        facts,
                        n=resolved.num_candidates,
                        drafting_seed=resolved.drafting_seed,
                        time_left_s=(
                            None
                            if time_left_s is None
                            else time_left_s - (time.perf_counter() - started)
                        ),
                        calls_beside=self.admission.in_flight - 1,
                        on_draft=ahead.drafted,
                    )
                    ticket.drafting_done()
                timings.update(drafting.timings_ms)
                with self._stage("rank", timings):
                    if drafting.drafts:
                        await ahead.settled()
                    ranked = await self._ranker.rank(facts, drafting.drafts)
            finally:
                ahead.cancel()
            selection = select(drafting, ranked, self._ranker.name)
            rejections = [
                kind
                for r in ranked
                if not r.verdict.passed
                for kind in dict.fromkeys(v.kind.value for v in r.verdict.violations)
            ]
        with self._stage("select", traced=False):
            explanation = self._answer(request, resolved, facts, decision, selection, timings)
        if what_if:
            self._observer.explained(timings, explanation.fallback_reason, rejections)
            return explanation.model_copy(update={"record_id": "", "timings_ms": dict(timings)})
        mark = time.perf_counter()
        if time_left_s is not None and time_left_s - (mark - started) < MIN_COMMIT_S:
            self._observer.shed(SHED_DEADLINE)
            raise Overloaded(
                "server busy: no time left to answer inside the deadline; "
                f"retry in {self._config.retry_after_s:g} s",
                self._config.retry_after_s,
            )
        retain_until = self._archive.retain_until(explanation.model_id, explanation.created_at)
        record = build_record(
            request,
            resolved,
            explanation,
            self._config.service_version,
            principal,
            retain_until,
            request_id,
            plan,
        )
        try:
            with self._stage("archive"):
                committed = await self._archive.append(record)
        except DuplicateIdempotencyKey:
            stored = await self._archive.find_by_idempotency_key(principal, request.idempotency_key)
            assert stored is not None
            return await self._replay(request, stored)
        except Exception:
            self._observer.archive_failed()
            raise
        timings["archive"] = (time.perf_counter() - mark) * 1000
        self._observer.archived(committed.seq + 1)
        self._observer.explained(timings, explanation.fallback_reason, rejections)
        # The archived record holds the timings up to the commit; the answer adds its cost.
        return explanation.model_copy(update={"timings_ms": dict(timings)})

    def _answer(
        self,
        request: ExplainRequest,
        resolved: ResolvedRequest,
        facts: DecisionFacts,
        decision: Decision,
        selection: Selection | None,
        timings: dict[str, float],
    ) -> Explanation:
        """The answer: the selected candidate, or the deterministic explanation of record."""
        manifest = facts.manifest
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
        return PlannedExplanation(
            plan=facts.plan,
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
