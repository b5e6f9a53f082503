"""An answer with the content plan it follows.

The archived record keeps the plan beside the response (``body["plan"]``, see
:mod:`expound.pipeline.record`), so the plan is left out of the response's own dump: the
canonical bytes of a record are what they were. The transports read it here to put it in
the answer (``ExplainResponse.plan``).
"""

from __future__ import annotations

import json

from pydantic import Field

from expound.archive.records import StoredRecord
from expound.domain import Explanation
from expound.explainers.plan import ContentPlan


class PlannedExplanation(Explanation):
    """An :class:`Explanation` with its content plan (None: written before plans)."""

    plan: ContentPlan | None = Field(default=None, exclude=True)


def stored_plan(record: StoredRecord) -> ContentPlan | None:
    """The content plan archived with a record (None for records without one)."""
    body = json.loads(record.canonical)
    plan = body.get("plan")
    return None if plan is None else ContentPlan.model_validate(plan)


def plan_of(explanation: Explanation) -> ContentPlan | None:
    """The plan an answer carries (None for a plain :class:`Explanation`)."""
    return explanation.plan if isinstance(explanation, PlannedExplanation) else None
