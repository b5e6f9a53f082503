"""A notice composed from a record, a creditor profile, an applicant and a template set.

The code decides what the notice must hold; the templates decide how it reads. After
rendering, the notice's text is checked for every element the law and the audit need
(creditor name and address, applicant name, the ECOA agency, each disclosed reason, the
bureaus, the credit score, the record id, the template and profile hashes): a template
edit that drops one is refused, not printed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Any

import jinja2

from expound.notices.applicant import NoticeApplicant
from expound.notices.creditor import LoadedCreditor
from expound.notices.errors import NoticeError
from expound.notices.record import NoticeReason, NoticeRecord
from expound.notices.templates import RECORD_LANGUAGE, TemplateSet


@dataclass(frozen=True)
class NoticeProvenance:
    """What produced a notice: recorded with it, since the archived record cannot change."""

    record_id: str
    record_sha256: str
    language: str
    template_id: str
    template_sha256: str
    creditor_sha256: str
    notice_date: str

    def as_dict(self) -> dict[str, str]:
        """The provenance as a flat JSON object."""
        return asdict(self)


@dataclass(frozen=True)
class Notice:
    """A rendered notice (a standalone HTML page) and what produced it."""

    html: str
    title: str
    provenance: NoticeProvenance


class _Text(HTMLParser):
    """The text a reader sees: character data outside ``<style>``, ``<script>``, ``<head>``."""

    _HIDDEN = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._hidden = 0
        self.parts: list[str] = []
        self.title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        self._in_title = self._in_title or tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _words(text: str) -> str:
    return " ".join(text.split())


def _reasons(record: NoticeRecord, templates: TemplateSet, language: str) -> list[NoticeReason]:
    translated = templates.reason_texts(language)
    if language == RECORD_LANGUAGE:
        return list(record.reasons)
    missing = [reason.code for reason in record.reasons if reason.code not in translated]
    if missing:
        raise NoticeError(
            f"template {templates.folder / language / 'reasons.toml'}: no text for reason "
            f"code(s) {', '.join(missing)}"
        )
    return [NoticeReason(rank=r.rank, code=r.code, text=translated[r.code]) for r in record.reasons]


def _credit_score(creditor: LoadedCreditor, applicant: NoticeApplicant) -> dict[str, Any] | None:
    policy = creditor.profile.credit_score
    if not policy.used:
        return None
    score = applicant.credit_score
    if score is None:
        raise NoticeError(
            f"creditor profile {creditor.path} says a credit score was used: the applicant "
            "file must give credit_score (value, date and key_factors)"
        )
    assert policy.range_low is not None and policy.range_high is not None
    if not policy.range_low <= score.value <= policy.range_high:
        raise NoticeError(
            f"applicant credit score {score.value} is outside the range "
            f"{policy.range_low}-{policy.range_high} of {policy.name} ({creditor.path})"
        )
    return {
        "name": policy.name,
        "value": score.value,
        "date": score.date,
        "range_low": policy.range_low,
        "range_high": policy.range_high,
        "key_factors": list(score.key_factors),
        "inquiries_were_key_factor": score.inquiries_were_key_factor,
        "provider": creditor.profile.score_provider(),
    }


def _required(
    record: NoticeRecord,
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    context: dict[str, Any],
    provenance: NoticeProvenance,
) -> list[tuple[str, str]]:
    """(what, text) pairs the rendered notice must show."""
    profile = creditor.profile
    required = [
        ("the creditor's name", profile.name),
        *(("the creditor's address", line) for line in profile.address),
        ("the creditor's phone", profile.contact.phone),
        ("the applicant's name", applicant.name),
        ("the record id", record.record_id),
        ("the template id", provenance.template_id),
        ("the template sha256", provenance.template_sha256),
        ("the creditor profile sha256", provenance.creditor_sha256),
    ]
    if not record.adverse:
        return required
    required.append(("the ECOA agency", profile.ecoa_agency.name))
    required += [("the ECOA agency's address", line) for line in profile.ecoa_agency.address]
    required += [(f"reason {r.code}", r.text) for r in context["reasons"]]
    for bureau in profile.bureaus:
        required += [("a bureau", bureau.name), (f"{bureau.name}'s phone", bureau.phone)]
    score = context["credit_score"]
    if score is not None:
        required += [
            ("the credit score", str(score["value"])),
            ("the score range", str(score["range_low"])),
            ("the score range", str(score["range_high"])),
            *(("a key factor", factor) for factor in score["key_factors"]),
        ]
    return required


def compose_notice(
    record: NoticeRecord,
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    language: str,
    notice_date: date,
) -> Notice:
    """Renders the notice of ``record`` in ``language``.

    Raises:
        NoticeError: Naming the file at fault, when the template set lacks the language or
            a reason's text, the profile and the applicant file disagree, a template fails,
            or the rendered notice lacks a required element.
    """
    template = templates.notice_template(language)
    applicant = applicant.in_language(language)
    reasons = _reasons(record, templates, language)
    disclosed = creditor.profile.reasons == "disclose" and bool(reasons)
    provenance = NoticeProvenance(
        record_id=record.record_id,
        record_sha256=record.verification.record_sha256,
        language=language,
        template_id=templates.manifest.id,
        template_sha256=templates.sha256,
        creditor_sha256=creditor.sha256,
        notice_date=notice_date.isoformat(),
    )
    context: dict[str, Any] = {
        "notice_date": notice_date,
        "language": language,
        "creditor": creditor.profile,
        "applicant": applicant,
        "decision": record,
        "decided_on": record.decided_at.date(),
        "reasons": reasons if disclosed else [],
        # Without reasons the notice states the right to ask for them within 60 days.
        "reasons_disclosed": disclosed,
        # The explanation is in the records' language (another language's notice leaves it
        # out) and names the reasons (a notice giving them on request leaves it out too).
        "explanation": (
            record.applicant_text
            if language == RECORD_LANGUAGE and (disclosed or not record.adverse)
            else None
        ),
        "bureaus": creditor.profile.bureaus,
        "credit_score": (_credit_score(creditor, applicant) if record.adverse else None),
        "verification": record.verification,
        "provenance": provenance,
    }
    try:
        html = template.render(context)
    except jinja2.TemplateError as error:
        name = getattr(error, "name", None) or f"{language}/notice.html"
        raise NoticeError(f"template {templates.folder / name}: {error}") from error
    seen = _Text()
    seen.feed(html)
    text = _words(" ".join(seen.parts))
    missing = sorted(
        {
            what
            for what, value in _required(record, creditor, applicant, context, provenance)
            if _words(value) not in text
        }
    )
    if missing:
        raise NoticeError(
            f"template {templates.folder / language / 'notice.html'}: the notice it renders "
            f"lacks {', '.join(missing)}"
        )
    return Notice(html=html, title=_words(" ".join(seen.title)), provenance=provenance)
