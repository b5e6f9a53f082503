"""Time as expound writes it: RFC 3339 in UTC with microseconds, e.g.
``2025-01-02T03:04:05.123456Z``.

One format everywhere (records, checkpoints, retention, the wire), fixed-width so that it
sorts as text: the year is always four digits, which ``strftime("%Y")`` does not promise
(it writes year 999 as ``999``).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_utc", "parse_utc", "utc_now"]


def format_utc(moment: datetime) -> str:
    """Formats a timezone-aware moment as RFC 3339 UTC with microseconds.

    Raises:
        ValueError: If ``moment`` has no timezone (its UTC time would be a guess).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must carry a timezone")
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def parse_utc(text: str) -> datetime:
    """Parses RFC 3339 text with a ``Z`` or numeric offset into an aware UTC datetime.

    Fractions beyond microseconds are cut, not rounded (Python holds microseconds).

    Raises:
        ValueError: If ``text`` is not such a time.
    """
    if not text.isascii():
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    body = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    date_time, dot, rest = body.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        body = f"{date_time}.{rest[: min(digits, 6)]}{rest[digits:]}"
    moment = datetime.fromisoformat(body)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {text!r}")
    return moment.astimezone(UTC)


def utc_now() -> str:
    """The current time, formatted by `format_utc`."""
    return format_utc(datetime.now(UTC))
