"""How long a record's payload is kept: a retain-until date per record, and legal holds.

Consumer credit decisions are kept 25 months by default (ECOA / Regulation B keep
applications and notices 25 months); a model may set its own period. A payload may be
removed only after its retain-until date and while no legal hold is placed on it; its leaf
hash stays in the log, and a tombstone leaf records the removal.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from expound.archive.records import KIND_RECORD, StoredRecord, column_mismatch, columns_of
from expound.errors import RetentionRefused
from expound.times import format_utc, parse_utc

DEFAULT_RETENTION_MONTHS = 25


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class RetentionPolicy:
    """Retention periods in months: a default and per-model overrides."""

    default_months: int = DEFAULT_RETENTION_MONTHS
    months_by_model: Mapping[str, int] = field(default_factory=dict)

    def retain_until(self, model_id: str, created_at: str) -> str:
        """The retain-until time of a record of ``model_id`` created at ``created_at``."""
        months = self.months_by_model.get(model_id, self.default_months)
        return format_utc(add_months(parse_utc(created_at), months))


def require_expirable(record: StoredRecord, now: str) -> None:
    """Refuses to expire a payload that is held, retained, already gone or not a record.

    The row's columns must agree with its payload: a retain-until date (or any column)
    altered in the database is refused, never acted on.

    Raises:
        RetentionRefused: Naming why.
    """
    if record.kind != KIND_RECORD:
        raise RetentionRefused(f"{record.record_id} is a {record.kind}, not a record")
    if record.expired:
        raise RetentionRefused(f"{record.record_id} has already expired")
    altered = column_mismatch(record.columns(), columns_of(record.body(), record.canonical))
    if altered:
        raise RetentionRefused(
            f"{record.record_id} (seq {record.seq}): its {altered} column disagrees with its "
            "archived payload; the archive was altered: nothing expires, run the audit"
        )
    if record.legal_hold:
        raise RetentionRefused(f"{record.record_id} is under legal hold")
    if record.retain_until > now:
        raise RetentionRefused(f"{record.record_id} is retained until {record.retain_until}")
