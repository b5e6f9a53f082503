"""Wire values that the client and the server both convert: feature values, times, audiences,
reason wordings.

It imports protobuf, the generated messages and ``expound.domain`` (pydantic) only, so the
light client (``pip install expound``, no server extra) can use it; ``expound.server.convert``
takes its feature conversions from here, so each conversion is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from expound.domain import FeatureScalar
from expound.v1 import explain_pb2 as pb

__all__ = [
    "AUDIENCES",
    "FeatureScalar",
    "datetime_from_pb",
    "explain_request",
    "feature_from_pb",
    "feature_to_pb",
    "fill_feature_pb",
    "reason_third_person",
    "timestamp_to_pb",
]

# The audiences by the names the client and the command line use.
AUDIENCES: dict[str, int] = {
    "applicant": pb.APPLICANT,
    "analyst": pb.ANALYST,
    "compliance": pb.COMPLIANCE,
}


def feature_from_pb(value: pb.FeatureValue) -> FeatureScalar:
    """A wire feature value as a Python scalar.

    Raises:
        ValueError: The value has none of its kinds set.
    """
    kind = value.WhichOneof("kind")
    if kind == "number":
        return value.number
    if kind == "string":
        return value.string
    if kind == "bool":
        return value.bool
    if kind == "null":
        return None
    raise ValueError("value not set")


_NULL = pb.FeatureValue(null="NULL_VALUE")


def feature_to_pb(value: FeatureScalar) -> pb.FeatureValue:
    """A Python scalar as a wire feature value."""
    message = pb.FeatureValue()
    fill_feature_pb(message, value)
    return message


def fill_feature_pb(message: pb.FeatureValue, value: FeatureScalar) -> None:
    """Sets ``message`` (a new, empty field of a larger message) to a Python scalar: a
    field filled in place costs a third of a message built and copied in."""
    if value is None:
        message.CopyFrom(_NULL)
    elif isinstance(value, bool):
        message.bool = value
    elif isinstance(value, (int, float)):
        message.number = float(value)
    else:
        message.string = value


def timestamp_to_pb(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A moment as a wire timestamp (None stays unset; a naive moment is taken as UTC)."""
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def datetime_from_pb(stamp: timestamp_pb2.Timestamp) -> datetime | None:
    """A wire timestamp as an aware UTC datetime (None when unset)."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def explain_request(
    model_id: str, features: Mapping[str, FeatureScalar], **fields: Any
) -> pb.ExplainRequest:
    """An ExplainRequest from plain feature values (other fields as keywords)."""
    return pb.ExplainRequest(
        model_id=model_id,
        features={name: feature_to_pb(value) for name, value in features.items()},
        **fields,
    )


def reason_third_person(reason: pb.PrincipalReason) -> str:
    """A principal reason as analysts and compliance read it: ``neutral_text``, or in a
    record written before that was kept, ``text`` (the only wording such a record holds);
    :attr:`expound.domain.PrincipalReason.third_person` on the wire."""
    return reason.neutral_text or reason.text
