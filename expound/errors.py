"""The one exception tree of expound.

Every error a caller can see derives from :class:`ServiceError` and carries the gRPC
status code it maps to (by name, so this module imports no gRPC)::

    ServiceError                      INTERNAL
    ├── InvalidRequest                INVALID_ARGUMENT  (field violations -> BadRequest)
    ├── ModelNotFound                 NOT_FOUND
    ├── RecordNotFound                NOT_FOUND
    ├── IdempotencyConflict           ALREADY_EXISTS
    ├── ModelIntegrityError           FAILED_PRECONDITION
    ├── AttributionError              INTERNAL  (additivity violated, explainer failed)
    ├── ArchiveUnavailable            UNAVAILABLE
    ├── RetentionRefused              FAILED_PRECONDITION  (before retain-until, or held)
    ├── Overloaded                    RESOURCE_EXHAUSTED  (shed at admission -> RetryInfo)
    ├── Unauthenticated               UNAUTHENTICATED  (no valid credential)
    ├── PermissionDenied              PERMISSION_DENIED  (the caller's roles do not allow it)
    └── LLMError                      UNAVAILABLE  (LLM backend; handled as a fallback)

The server's interceptor maps these, and only these, to status codes; anything else is
INTERNAL with a fixed message and the request id. ``tests/unit/test_errors.py`` checks the
map, and that every code in it is carried by some error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class StatusCode(Enum):
    """gRPC status codes used by expound, by name (mirrors ``grpc.StatusCode``)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAVAILABLE = "UNAVAILABLE"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    INTERNAL = "INTERNAL"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True)
class FieldViolation:
    """One offending field of a request, as in ``google.rpc.BadRequest``."""

    field: str
    description: str


class StartupError(Exception):
    """The service cannot start; the message is one line naming the setting, file or port.

    Not a ServiceError: no caller sees it; ``expound serve`` prints it and exits.
    """


class ServiceError(Exception):
    """Base of every error expound reports to a caller."""

    code: StatusCode = StatusCode.INTERNAL
    # When set, the caller is told to retry after this many seconds (google.rpc.RetryInfo).
    retry_after_s: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """The request is malformed; ``violations`` names every offending field."""

    code = StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: list[FieldViolation]) -> None:
        super().__init__(message)
        self.violations = violations


class ModelNotFound(ServiceError):
    """No model with that id is registered."""

    code = StatusCode.NOT_FOUND


class RecordNotFound(ServiceError):
    """No archived record with that id."""

    code = StatusCode.NOT_FOUND


class IdempotencyConflict(ServiceError):
    """An idempotency key was reused with a different request."""

    code = StatusCode.ALREADY_EXISTS


class ModelIntegrityError(ServiceError):
    """A model artifact or manifest does not match its recorded hash or schema."""

    code = StatusCode.FAILED_PRECONDITION

    @classmethod
    def of(cls, directory: object, *problem: str) -> ModelIntegrityError:
        """The refusal of model directory ``directory``: the problem, after the manifest
        field it concerns when there is one (``of(d, "score.space", "no predict_proba")``)."""
        return cls(": ".join((f"model directory {directory}", *problem)))


class AttributionError(ServiceError):
    """Attributions could not be computed or failed the additivity check."""

    code = StatusCode.INTERNAL


class ArchiveUnavailable(ServiceError):
    """The record could not be committed; the decision must not be answered."""

    code = StatusCode.UNAVAILABLE


class RetentionRefused(ServiceError):
    """A payload may not be removed yet: its retain-until date is ahead or it is held."""

    code = StatusCode.FAILED_PRECONDITION


class Overloaded(ServiceError):
    """The call was shed: too many calls at once, or no time left to answer in.

    Answered at once, before any work; ``retry_after_s`` is the delay the caller is told to
    wait (``google.rpc.RetryInfo``).
    """

    code = StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s: float | None = retry_after_s


class Unauthenticated(ServiceError):
    """The call carries no valid credential.

    The caller is told only that (and the request id); which check failed is logged on the
    server, never sent: an attacker learns nothing about which part of a token was wrong.
    """

    code = StatusCode.UNAUTHENTICATED

    def __init__(self, message: str = "unauthenticated") -> None:
        super().__init__(message)


class PermissionDenied(ServiceError):
    """The caller is authenticated, but none of its roles allows this RPC."""

    code = StatusCode.PERMISSION_DENIED

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class LLMError(ServiceError):
    """The LLM backend failed; the pipeline falls back to the deterministic explanation."""

    code = StatusCode.UNAVAILABLE

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
