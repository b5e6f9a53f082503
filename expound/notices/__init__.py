"""Adverse action notices a regulator would accept, rendered from archived records.

A notice is composed from four inputs, each checked before the record is read::

    creditor profile (TOML)  ->  creditor.load_creditor      who gives notice, agency, bureaus
    applicant file (JSON)    ->  applicant.load_notice_applicant   whom it is addressed to
    template set (folder)    ->  templates.load_template_set  the wording, per language
    archived record          ->  record.notice_record         the decision and its reasons
                                  compose.compose_notice   ->  Notice (HTML + provenance)
                                  output.notice_pdf / pdf_png  ->  PDF, PNG

Every failure is a :class:`NoticeError` (a ``ValueError``) whose message names the file.
"""

from expound.notices.applicant import CreditScore, NoticeApplicant, load_notice_applicant
from expound.notices.compose import Notice, NoticeProvenance, compose_notice
from expound.notices.creditor import CreditorProfile, LoadedCreditor, load_creditor
from expound.notices.errors import NoticeError
from expound.notices.output import notice_pdf, pdf_png
from expound.notices.record import NoticeRecord, notice_record
from expound.notices.templates import (
    DEFAULT_TEMPLATES,
    TemplateSet,
    load_template_set,
    template_folder,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "CreditScore",
    "CreditorProfile",
    "LoadedCreditor",
    "Notice",
    "NoticeApplicant",
    "NoticeError",
    "NoticeProvenance",
    "NoticeRecord",
    "TemplateSet",
    "compose_notice",
    "load_creditor",
    "load_notice_applicant",
    "load_template_set",
    "notice_pdf",
    "notice_record",
    "pdf_png",
    "template_folder",
]
