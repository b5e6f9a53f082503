"""The creditor profile: who gives notice, and what the notice must disclose about them.

A TOML file the compliance team keeps, one per creditor (see the README's "Notices"
section for a full example). It holds the creditor's name, address and contact, the
federal agency that administers ECOA compliance for this creditor (Regulation B,
12 CFR 1002.9(b)(1) and appendix A), the consumer reporting agencies whose reports were
used (FCRA section 615(a)), whether and which credit score was used (FCRA section
615(a)(2), 609(f)), and whether the notice states the reasons or the right to ask for them
(12 CFR 1002.9(a)(2)(i) or (ii)).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from expound.notices.errors import NoticeError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_Line = Field(min_length=1, max_length=200)


class Contact(_Strict):
    """Whom the applicant contacts about the notice (and asks for the reasons)."""

    department: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=3, max_length=40)
    email: str = ""
    website: str = ""


class Agency(_Strict):
    """The federal agency that administers ECOA compliance for this creditor."""

    name: str = Field(min_length=3, max_length=200)
    address: list[str] = Field(min_length=1, max_length=6)


class Bureau(_Strict):
    """A consumer reporting agency whose report the decision used."""

    name: str = Field(min_length=2, max_length=200)
    address: list[str] = Field(min_length=1, max_length=6)
    phone: str = Field(min_length=3, max_length=40)
    # Nationwide agencies must be given with a toll-free number (FCRA section 615(a)(3)(A)).
    toll_free: bool = True
    website: str = ""


class CreditScorePolicy(_Strict):
    """Whether a credit score was used and which one: the per-applicant value comes with the
    applicant file, the scoring model's name and range are the creditor's."""

    used: bool = False
    name: str = ""
    range_low: int | None = None
    range_high: int | None = None
    # The name of one of the profile's bureaus: the source the applicant asks about the score.
    provider: str = ""

    @model_validator(mode="after")
    def _complete_when_used(self) -> CreditScorePolicy:
        if not self.used:
            return self
        missing = [
            name
            for name, value in (
                ("name", self.name),
                ("range_low", self.range_low),
                ("range_high", self.range_high),
                ("provider", self.provider),
            )
            if value in (None, "")
        ]
        if missing:
            raise ValueError(f"a credit score is used: give {', '.join(missing)}")
        assert self.range_low is not None and self.range_high is not None
        if self.range_low >= self.range_high:
            raise ValueError("range_low must be below range_high")
        return self


class CreditorProfile(_Strict):
    """One creditor's identity and disclosures, as its compliance team approved them."""

    name: str = Field(min_length=2, max_length=200)
    address: list[str] = Field(min_length=1, max_length=6)
    contact: Contact
    ecoa_agency: Agency
    bureaus: list[Bureau] = Field(default_factory=list, max_length=4)
    credit_score: CreditScorePolicy = CreditScorePolicy()
    # "disclose": the notice lists the principal reasons (12 CFR 1002.9(a)(2)(i));
    # "on_request": it states the right to ask for them within 60 days (1002.9(a)(2)(ii)).
    reasons: Literal["disclose", "on_request"] = "disclose"
    # Where this creditor's notice templates lie (relative to this file); empty: the
    # setting, else the templates shipped with expound.
    templates: str = ""

    @model_validator(mode="after")
    def _score_provider_is_a_bureau(self) -> CreditorProfile:
        names = [bureau.name for bureau in self.bureaus]
        if self.credit_score.used and self.credit_score.provider not in names:
            raise ValueError(
                f"credit_score.provider {self.credit_score.provider!r} is not one of the "
                f"bureaus {names}"
            )
        return self

    def score_provider(self) -> Bureau | None:
        """The bureau that supplied the credit score, when one was used."""
        if not self.credit_score.used:
            return None
        return next(b for b in self.bureaus if b.name == self.credit_score.provider)


@dataclass(frozen=True)
class LoadedCreditor:
    """A profile with the file it came from and that file's sha256 (recorded per notice)."""

    profile: CreditorProfile
    path: Path
    sha256: str


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'profile'}: {problem['msg']}"
        for problem in error.errors()
    )


def load_creditor(path: Path) -> LoadedCreditor:
    """Reads and checks a creditor profile.

    Raises:
        NoticeError: Naming the file, when it cannot be read, is not TOML or lacks a field.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise NoticeError(f"creditor profile {path}: {error.strerror or error}") from error
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NoticeError(f"creditor profile {path}: not valid TOML: {error}") from error
    try:
        profile = CreditorProfile.model_validate(document)
    except ValidationError as error:
        raise NoticeError(f"creditor profile {path}: {_problems(error)}") from error
    return LoadedCreditor(profile=profile, path=path, sha256=hashlib.sha256(raw).hexdigest())
