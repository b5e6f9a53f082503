"""Who is calling, for the length of one call: the request id and the caller's principal.

Set by the call's guard (:mod:`expound.server.errors`) before the handler runs, read by
the servicer (which passes the principal on explicitly: the pipeline, the archive and the
record reads never read context variables) and by the access log.
"""

from __future__ import annotations

import contextvars

from expound.domain import ANONYMOUS

__all__ = ["ANONYMOUS", "current_principal", "current_request_id"]

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
principal_var: contextvars.ContextVar[str] = contextvars.ContextVar("principal", default=ANONYMOUS)
# True when the caller's role lets it read only the records it created (the analyst's).
own_records_only_var: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "own_records_only", default=False
)


# True when the caller may ask for what-if answers, which are not archived (the policy's
# what_if roles; everyone with authentication off).
what_if_allowed_var: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "what_if_allowed", default=True
)


def current_request_id() -> str:
    """The request id of the call being served ("" outside a call)."""
    return request_id_var.get()


def current_principal() -> str:
    """The principal of the call being served (:data:`ANONYMOUS` when unauthenticated)."""
    return principal_var.get()
