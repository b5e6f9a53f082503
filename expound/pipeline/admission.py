"""Admission control: how many Explain calls run at once, and how many may wait on the LLM.

A call beyond either bound is shed at once with :class:`Overloaded` (RESOURCE_EXHAUSTED
with a retry delay), before any work, so that an accepted call has the time and the room
to be answered inside its deadline. One event loop runs the pipeline, so plain counters
suffice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from expound.errors import Overloaded
from expound.observability.hooks import NO_OBSERVER, SHED_CALLS, SHED_LLM_QUEUE, Observer


class Ticket:
    """An admitted call; holds a place in the LLM queue until drafting is done."""

    def __init__(self, admission: Admission, drafts: bool) -> None:
        self._admission = admission
        self.drafts = drafts

    def drafting_done(self) -> None:
        """Gives the call's place in the LLM queue to the next call."""
        if self.drafts:
            self.drafts = False
            self._admission.drafting -= 1


class Admission:
    """Bounds the Explain calls in flight and the calls drafting (on the LLM or queued)."""

    def __init__(
        self,
        max_calls: int,
        max_llm_calls: int,
        retry_after_s: float,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self.max_calls = max_calls
        self.max_llm_calls = max_llm_calls
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.drafting = 0
        self._observer = observer

    @contextlib.contextmanager
    def admitted(self, drafts: bool) -> Iterator[Ticket]:
        """Admits one call for its lifetime, or sheds it.

        Args:
            drafts: the call will ask the LLM for drafts (and so takes a place in its queue).

        Raises:
            Overloaded: the bound on calls, or on the LLM queue, is reached.
        """
        if self.in_flight >= self.max_calls:
            self._observer.shed(SHED_CALLS)
            raise Overloaded(
                f"server busy: {self.max_calls} Explain calls in flight; "
                f"retry in {self.retry_after_s:g} s",
                self.retry_after_s,
            )
        if drafts and self.drafting >= self.max_llm_calls:
            self._observer.shed(SHED_LLM_QUEUE)
            raise Overloaded(
                f"server busy: the LLM queue is full ({self.max_llm_calls} calls); "
                f"retry in {self.retry_after_s:g} s",
                self.retry_after_s,
            )
        self.in_flight += 1
        if drafts:
            self.drafting += 1
        ticket = Ticket(self, drafts)
        try:
            yield ticket
        finally:
            ticket.drafting_done()
            self.in_flight -= 1
