"""The applicant a notice is addressed to: name, address and, when a credit score was used,
its value and date. None of it is in the archive (a record holds the decision's features,
not who the person is), so the caller passes it in, as a JSON file:

    {"name": "Ana María Núñez", "address": ["12 Elm Street", "Springfield, IL 62701"],
     "product": {"en": "a personal loan", "es": "un préstamo personal"},
     "credit_score": {"value": 612, "date": "2026-11-20",
                      "key_factors": ["Length of credit history"]}}

``key_factors`` are the score's key factors as the score's provider gave them (at most four,
FCRA section 609(f)(1)(C)), and are required with a score: the decision's principal reasons
are the creditor's model's, not the factors of a score a consumer reporting agency computed,
so they never stand in for them (a notice saying "Length of the requested loan term"
affected a bureau score would be false).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from expound.notices.errors import NoticeError

MAX_KEY_FACTORS = 4


ProductWording = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CreditScore(_Strict):
    """The credit score the decision used, as the consumer reporting agency reported it."""

    value: int
    date: date
    key_factors: list[str] = Field(default_factory=list, max_length=MAX_KEY_FACTORS)
    # The number of inquiries is disclosed on top of the four when it was a key factor
    # (FCRA section 609(f)(9)).
    inquiries_were_key_factor: bool = False

    @model_validator(mode="after")
    def _has_key_factors(self) -> CreditScore:
        if not self.key_factors and not self.inquiries_were_key_factor:
            raise ValueError(
                "key_factors: required with a credit score: the factors that adversely "
                f"affected it, as its provider gave them (1 to {MAX_KEY_FACTORS}; FCRA "
                "609(f)(1)(C)); the decision's principal reasons do not stand for them"
            )
        return self


class NoticeApplicant(_Strict):
    """Whom the notice is addressed to."""

    name: str = Field(min_length=1, max_length=200)
    address: list[str] = Field(min_length=1, max_length=6)
    # What was applied for, as the notice's sentence continues "application for": one
    # wording, or one per language ({"en": "a personal loan", "es": "un préstamo personal"}).
    product: ProductWording | dict[str, ProductWording] = ""
    credit_score: CreditScore | None = None

    def in_language(self, language: str) -> NoticeApplicant:
        """This applicant with its product worded for ``language``.

        Raises:
            NoticeError: The product is worded per language, but not in ``language``.
        """
        if isinstance(self.product, str):
            return self
        if language not in self.product:
            raise NoticeError(
                f"applicant file: product has no {language!r} wording (it has "
                f"{', '.join(sorted(self.product)) or 'none'}): a notice in {language!r} "
                "would print another language's words"
            )
        return self.model_copy(update={"product": self.product[language]})


def load_notice_applicant(path: Path) -> NoticeApplicant:
    """Reads and checks an applicant file.

    Raises:
        NoticeError: Naming the file, when it cannot be read, is not JSON or lacks a field.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise NoticeError(f"applicant file {path}: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NoticeError(f"applicant file {path}: not valid JSON: {error}") from error
    try:
        return NoticeApplicant.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'applicant'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise NoticeError(f"applicant file {path}: {problems}") from error
