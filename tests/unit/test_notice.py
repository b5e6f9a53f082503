"""Adverse action notices rendered from real archived records: PDF text layer, PNG, hashes."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tomllib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pypdf
import pytest
from PIL import Image

from expound import notices
from expound.clients.client import explain_request
from expound.notices import (
    DEFAULT_TEMPLATES,
    LoadedCreditor,
    Notice,
    NoticeApplicant,
    NoticeError,
    TemplateSet,
    compose_notice,
    load_creditor,
    load_notice_applicant,
    load_template_set,
    notice_pdf,
    notice_record,
    pdf_png,
    template_folder,
)
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import EXAMPLES, GBM, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "notices"
NOTICE_DATE = date(2026, 11, 24)
SPANISH_REASONS: dict[str, str] = tomllib.loads(
    (DEFAULT_TEMPLATES / "es" / "reasons.toml").read_text()
)["reasons"]

# What each language's notice must say, beside the values the test takes from its inputs.
WORDING = {
    "en": {
        "action taken": "your application for a personal loan was declined on",
        "decision date": "November",
        "ECOA statement": "The federal Equal Credit Opportunity Act prohibits creditors from "
        "discriminating against credit applicants on the basis of race, color, religion, "
        "national origin, sex, marital status, age",
        "ECOA agency": "The federal agency that administers compliance with this law "
        "concerning this creditor is:",
        "score": "Your credit score (Example Score 8): 598",
        "score date": "Date: November 20, 2026",
        "score range": "Scores range from a low of 300 to a high of 850",
        "key factors": "Key factors that adversely affected your credit score:",
        "free report in 60 days": "You also have a right to a free copy of your report from "
        "the reporting agency, if you request it no later than 60 days after you receive this "
        "notice.",
        "reasons on request in 60 days": "If you would like a statement of specific reasons "
        "why your application was denied, please contact Consumer Credit Services at the "
        "address or telephone number shown below within 60 days of the date of this letter.",
    },
    "es": {
        "action taken": "su solicitud de un préstamo personal fue rechazada el",
        "decision date": "de noviembre de",
        "ECOA statement": "La Ley federal de Igualdad de Oportunidades de Crédito (Equal "
        "Credit Opportunity Act) prohíbe a los acreedores discriminar a los solicitantes de "
        "crédito por motivos de raza, color, religión, origen nacional, sexo, estado civil o edad",
        "ECOA agency": "La agencia federal que supervisa el cumplimiento de esta ley con "
        "respecto a este acreedor es:",
        "score": "Su puntaje de crédito (Example Score 8): 598",
        "score date": "Fecha: 20 de noviembre de 2026",
        "score range": "Los puntajes van desde un mínimo de 300 hasta un máximo de 850",
        "key factors": "Factores clave que afectaron negativamente su puntaje de crédito:",
        "free report in 60 days": "También tiene derecho a obtener una copia gratuita de su "
        "informe de la agencia de informes, si la solicita a más tardar 60 días después de "
        "recibir este aviso.",
        "reasons on request in 60 days": "Si desea una declaración de las razones específicas "
        "por las que se rechazó su solicitud, comuníquese con Consumer Credit Services en la "
        "dirección o el teléfono indicados abajo dentro de los 60 días siguientes a la fecha "
        "de esta carta.",
    },
}


def words(text: str) -> str:
    return " ".join(text.split())


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return words(" ".join(page.extract_text() for page in reader.pages))


def pdf_info(pdf: bytes) -> dict[str, Any]:
    info = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert info is not None
    return dict(info)


@pytest.fixture(scope="module")
async def records(
    models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, pb.Record]]:
    """Real records: a decline written for the applicant, the same for an analyst, an approval."""
    folder = tmp_path_factory.mktemp("notice-archive")
    settings = Settings(
        port=0,
        model_dir=models_dir,
        archive_path=folder / "archive.sqlite3",
        signing_key_path=folder / "key.pem",
        llm_mode="off",
        grace_seconds=0.5,
        checkpoint_every_records=1,
    )
    denied = json.loads((EXAMPLES / "applicant_denied.json").read_text())
    approved = json.loads((EXAMPLES / "applicant_approved.json").read_text())
    cases = {
        "applicant": (denied, pb.APPLICANT),
        "analyst": (denied, pb.ANALYST),
        "approved": (approved, pb.APPLICANT),
    }
    found = {}
    async with (
        running_server(settings) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        for name, (features, audience) in cases.items():
            response = await stub.Explain(
                explain_request(GBM, features, audience=audience, decision_id=f"loan-{name}")
            )
            found[name] = await stub.GetRecord(
                pb.GetRecordRequest(record_id=response.record_id, include_proof=True)
            )
    yield found


@pytest.fixture(scope="module")
def creditor() -> LoadedCreditor:
    return load_creditor(FIXTURES / "creditor.toml")


@pytest.fixture(scope="module")
def applicant() -> NoticeApplicant:
    return load_notice_applicant(FIXTURES / "applicant.json")


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return load_template_set(DEFAULT_TEMPLATES)


def record_reasons(record: pb.Record) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = json.loads(record.canonical_json)["response"][
        "principal_reasons"
    ]
    assert reasons, "the denied example must have principal reasons"
    return reasons


def reason_texts(record: pb.Record, language: str) -> list[str]:
    reasons = record_reasons(record)
    if language == "en":
        return [reason["text"] for reason in reasons]
    return [SPANISH_REASONS[reason["code"]] for reason in reasons]


def compose(
    record: pb.Record,
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    language: str = "en",
) -> Notice:
    return compose_notice(
        notice_record(record), creditor, applicant, templates, language, NOTICE_DATE
    )


def with_profile(tmp_path: Path, **changes: str) -> LoadedCreditor:
    """The fixture profile with top-level lines replaced (``key = value`` TOML text)."""
    lines = (FIXTURES / "creditor.toml").read_text().splitlines()
    for key, value in changes.items():
        # The first line of the key: top-level keys come before the tables.
        at = next(n for n, line in enumerate(lines) if line.startswith(f"{key} ="))
        lines[at] = f"{key} = {value}"
    path = tmp_path / "creditor.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_creditor(path)


def key_factors_listed(html: str, heading: str) -> list[str]:
    """The items of the list that follows the key factors' heading in a notice's HTML."""
    after = html.split(heading, 1)[1]
    listing = after.split("<ol>", 1)[1].split("</ol>", 1)[0]
    return [item.split("</li>")[0].strip() for item in listing.split("<li>")[1:]]


def copied_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES, folder)
    return folder


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_pdf_holds_every_required_element(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    language: str,
) -> None:
    record = records["applicant"]
    notice = compose(record, creditor, applicant, templates, language)
    pdf = notice_pdf(notice, templates)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    profile = creditor.profile
    reasons = reason_texts(record, language)
    wording = dict(WORDING[language])
    # Reasons given, the right to ask for them is not stated.
    assert words(wording.pop("reasons on request in 60 days")) not in text
    required = {
        **wording,
        "creditor": profile.name,
        **{f"creditor address {n}": line for n, line in enumerate(profile.address)},
        "creditor phone": profile.contact.phone,
        "applicant": applicant.name,
        **{f"applicant address {n}": line for n, line in enumerate(applicant.address)},
        "agency": profile.ecoa_agency.name,
        **{f"agency address {n}": line for n, line in enumerate(profile.ecoa_agency.address)},
        **{f"reason {n}": reason for n, reason in enumerate(reasons)},
        "bureau": profile.bureaus[0].name,
        "bureau phone": profile.bureaus[0].phone,
        "decision id": "loan-applicant",
    }
    score = applicant.credit_score
    assert score is not None and score.key_factors
    required |= {f"key factor {n}": factor for n, factor in enumerate(score.key_factors)}
    missing = {what: value for what, value in required.items() if words(value) not in text}
    assert missing == {}
    # The score's key factors are the provider's, never the model's principal reasons.
    listed = key_factors_listed(notice.html, wording["key factors"])
    inquiries = {"en": "Number of recent inquiries", "es": "Número de consultas recientes"}
    assert listed[:-1] == score.key_factors and listed[-1].startswith(inquiries[language])
    assert not set(reasons) & set(listed)
    if language == "es":
        assert not any(reason in text for reason in reason_texts(record, "en"))
    # The provenance, in the footer (hashes may wrap) and in the document information.
    bare = "".join(text.split())
    info = pdf_info(pdf)
    for key, value in notice.provenance.as_dict().items():
        assert info[f"/expound{key.replace('_', '')}"] == value
    for value in (templates.sha256, creditor.sha256, record.sha256, record.record_id):
        assert value in bare
    assert notice.provenance.template_sha256 == templates.sha256
    assert notice.provenance.language == language


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_png_is_the_pdf_drawn(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    language: str,
) -> None:
    pdf = notice_pdf(
        compose(records["applicant"], creditor, applicant, templates, language), templates
    )
    pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    image = Image.open(io.BytesIO(pdf_png(pdf)))
    assert image.format == "PNG"
    # US Letter at 2x 72 dpi, the pages one under another with a gap between them.
    assert image.width == 1224
    assert image.height == pages * 1584 + (pages - 1) * 16
    # Ink on the first page: the letterhead is drawn, not a blank sheet.
    letterhead = image.convert("L").crop((0, 0, image.width, 300))
    histogram = letterhead.histogram()
    assert sum(histogram[:100]) > 500


def test_an_analyst_record_never_gives_analyst_prose_to_the_applicant(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
) -> None:
    analyst = json.loads(records["analyst"].canonical_json)["response"]
    assert analyst["audience"] == "ANALYST"
    analyst_texts = [analyst["selected"]["text"], *(c["text"] for c in analyst["candidates"])]
    text = pdf_text(
        notice_pdf(compose(records["analyst"], creditor, applicant, templates), templates)
    )
    for prose in analyst_texts:
        for sentence in filter(None, (s.strip() for s in prose.split(". "))):
            assert words(sentence) not in text
    assert "log-odds" not in text and "Base value" not in text
    for reason in reason_texts(records["analyst"], "en"):
        assert reason in text
    # A notice speaks to the applicant: reasons in the applicant's words ("your checking
    # account"), even from a record drafted for an analyst in the third person.
    spoken = [r for r in reason_texts(records["analyst"], "en") if "your " in r.lower()]
    assert spoken and all(reason in text for reason in spoken)
    assert "the applicant's checking account" not in text.lower()
    # The applicant's own record does carry its (gated) explanation: the check above can fail.
    own = json.loads(records["applicant"].canonical_json)["response"]["selected"]["text"]
    own_text = pdf_text(
        notice_pdf(compose(records["applicant"], creditor, applicant, templates), templates)
    )
    assert words(own.split(". ")[0]) in own_text


@pytest.mark.parametrize("language", ["en", "es"])
def test_reasons_on_request_state_the_60_day_right_instead(
    records: dict[str, pb.Record],
    applicant: NoticeApplicant,
    templates: TemplateSet,
    tmp_path: Path,
    language: str,
) -> None:
    path = tmp_path / "creditor.toml"
    profile = (FIXTURES / "creditor.toml").read_text()
    path.write_text(
        profile.replace('reasons = "disclose"', 'reasons = "on_request"').replace(
            "used = true", "used = false"
        )
    )
    creditor = load_creditor(path)
    assert creditor.profile.reasons == "on_request" and not creditor.profile.credit_score.used
    text = pdf_text(
        notice_pdf(
            compose(records["applicant"], creditor, applicant, templates, language), templates
        )
    )
    assert words(WORDING[language]["reasons on request in 60 days"]) in text
    assert words(WORDING[language]["free report in 60 days"]) in text
    assert not any(reason in text for reason in reason_texts(records["applicant"], language))
    assert WORDING[language]["score range"] not in text


@pytest.mark.parametrize(
    ("language", "title", "approved"),
    [
        ("en", "Notice of Decision on Your Application", "was approved on"),
        ("es", "Aviso de la decisión sobre su solicitud", "fue aprobada el"),
    ],
)
def test_an_approval_gets_no_adverse_action_content(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    language: str,
    title: str,
    approved: str,
) -> None:
    notice = compose(records["approved"], creditor, applicant, templates, language)
    text = pdf_text(notice_pdf(notice, templates))
    assert notice.title == title
    assert approved in text and creditor.profile.name in text
    for element in ("action taken", "ECOA statement", "key factors", "free report in 60 days"):
        assert words(WORDING[language][element]) not in text


def test_a_template_edit_changes_the_recorded_hash(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    tmp_path: Path,
) -> None:
    folder = copied_templates(tmp_path)
    before = load_template_set(folder)
    assert before.sha256 == load_template_set(DEFAULT_TEMPLATES).sha256
    page = folder / "en" / "notice.html"
    page.write_text(page.read_text().replace("Dear ", "Hello "))
    after = load_template_set(folder)
    assert after.sha256 != before.sha256
    notice = compose(records["applicant"], creditor, applicant, after)
    assert notice.provenance.template_sha256 == after.sha256
    assert f"Hello {applicant.name}" in notice.html and after.sha256 in notice.html
    assert pdf_info(notice_pdf(notice, after))["/expoundtemplatesha256"] == after.sha256
    # The hash is the one the README tells a reviewer to recompute with sha256sum.
    recomputed = subprocess.run(
        "(find . -type f -not -path '*/.*' -printf '%P\\n' | LC_ALL=C sort "
        "| xargs -d '\\n' sha256sum) | sha256sum",
        shell=True,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert recomputed == after.sha256
    # An editor's swap file changes nothing.
    (folder / "en" / ".notice.html.swp").write_bytes(b"\0junk")
    assert load_template_set(folder).sha256 == after.sha256


def test_a_creditor_profile_edit_changes_the_recorded_hash(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
    tmp_path: Path,
) -> None:
    edited = with_profile(tmp_path, name='"Example Community Bank"')
    assert edited.sha256 != creditor.sha256
    notice = compose(records["applicant"], edited, applicant, templates)
    assert notice.provenance.creditor_sha256 == edited.sha256 != creditor.sha256


def test_applicant_names_are_text_never_markup(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    templates: TemplateSet,
) -> None:
    hostile = '<script>alert("x")</script> O\'Neil & <b>Sons</b>'
    applicant = NoticeApplicant.model_validate(
        {
            "name": hostile,
            "address": ["<img src=x onerror=alert(1)>"],
            "credit_score": {"value": 598, "date": "2026-11-20", "key_factors": [hostile]},
        }
    )
    notice = compose(records["applicant"], creditor, applicant, templates)
    assert "<script>" not in notice.html and "<b>Sons" not in notice.html
    assert "<img" not in notice.html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Neil &amp; &lt;b&gt;Sons"
        in notice.html
    )
    assert hostile in pdf_text(notice_pdf(notice, templates))


def test_a_template_that_drops_a_required_element_is_refused(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    tmp_path: Path,
) -> None:
    folder = copied_templates(tmp_path)
    page = folder / "en" / "notice.html"
    page.write_text(page.read_text().replace("{{ creditor.ecoa_agency.name }}", ""))
    with pytest.raises(NoticeError) as refused:
        compose(records["applicant"], creditor, applicant, load_template_set(folder))
    assert str(page) in str(refused.value) and "the ECOA agency" in str(refused.value)


def test_a_spanish_notice_needs_every_reason_code_in_spanish(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    tmp_path: Path,
) -> None:
    folder = copied_templates(tmp_path)
    table = folder / "es" / "reasons.toml"
    code = record_reasons(records["applicant"])[0]["code"]
    table.write_text(
        "".join(line for line in table.read_text().splitlines(True) if not line.startswith(code))
    )
    with pytest.raises(NoticeError) as refused:
        compose(records["applicant"], creditor, applicant, load_template_set(folder), "es")
    assert str(table) in str(refused.value) and code in str(refused.value)


def test_a_score_used_needs_the_applicants_score(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    templates: TemplateSet,
) -> None:
    anonymous = NoticeApplicant(name="A. Person", address=["1 Road"])
    with pytest.raises(NoticeError, match="credit_score"):
        compose(records["applicant"], creditor, anonymous, templates)
    out_of_range = NoticeApplicant.model_validate(
        {
            "name": "A. Person",
            "address": ["1 Road"],
            "credit_score": {"value": 900, "date": "2026-11-20", "key_factors": ["Age"]},
        }
    )
    with pytest.raises(NoticeError, match="outside the range 300-850"):
        compose(records["applicant"], creditor, out_of_range, templates)


def test_a_record_whose_json_does_not_match_its_hash_is_refused(
    records: dict[str, pb.Record],
) -> None:
    forged = pb.Record()
    forged.CopyFrom(records["applicant"])
    forged.canonical_json = forged.canonical_json.replace('"decline"', '"approve"')
    with pytest.raises(NoticeError, match="does not match its sha256"):
        notice_record(forged)


def test_a_template_fetches_only_its_own_files(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    tmp_path: Path,
) -> None:
    folder = copied_templates(tmp_path)
    logo = Image.new("RGB", (40, 20), "#000000")
    logo.save(folder / "logo.png")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (30, 30), "#ff0000").save(outside)
    layout = folder / "layout.html"
    layout.write_text(
        layout.read_text().replace(
            '<div class="name">',
            f'<img src="logo.png" alt="logo"><img src="file://{outside}" alt="x"><div class="name">',
        )
    )
    templates = load_template_set(folder)
    pdf = notice_pdf(compose(records["applicant"], creditor, applicant, templates), templates)
    # Its own logo is drawn; the file outside the set is not.
    first_page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    assert {image.image.size for image in first_page.images if image.image} == {(40, 20)}


def test_the_template_folder_is_the_option_else_the_profiles_else_the_setting(
    tmp_path: Path,
) -> None:
    option, setting = tmp_path / "option", tmp_path / "setting"
    profile = tmp_path / "bank" / "creditor.toml"
    assert template_folder(option, profile, "mine", setting) == option
    assert template_folder(None, profile, "mine", setting) == tmp_path / "bank" / "mine"
    assert template_folder(None, profile, "", setting) == setting
    assert template_folder(None, profile, "", None) == DEFAULT_TEMPLATES


def test_all_is_exactly_what_the_notices_package_exports() -> None:
    public = {
        name
        for name, value in vars(notices).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert sorted(notices.__all__) == sorted(public)


def test_the_same_inputs_render_the_same_bytes(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
) -> None:
    # A notice sent years ago is re-rendered from its record and inputs and compared by hash.
    first = notice_pdf(compose(records["applicant"], creditor, applicant, templates), templates)
    again = notice_pdf(compose(records["applicant"], creditor, applicant, templates), templates)
    assert first == again
    later = compose_notice(
        notice_record(records["applicant"]), creditor, applicant, templates, "en", date(2026, 12, 1)
    )
    assert notice_pdf(later, templates) != first


def test_a_score_without_its_providers_key_factors_is_refused(tmp_path: Path) -> None:
    # The decision's principal reasons are the creditor's model's: printed as a bureau
    # score's key factors they would be false, so they never stand in for them.
    document = json.loads((FIXTURES / "applicant.json").read_text())
    del document["credit_score"]["key_factors"]
    document["credit_score"]["inquiries_were_key_factor"] = False
    path = tmp_path / "applicant.json"
    path.write_text(json.dumps(document))
    with pytest.raises(NoticeError) as refused:
        load_notice_applicant(path)
    assert str(path) in str(refused.value) and "key_factors" in str(refused.value)
    # Inquiries alone are a key factor the provider gave.
    document["credit_score"]["inquiries_were_key_factor"] = True
    path.write_text(json.dumps(document))
    assert load_notice_applicant(path).credit_score is not None


def test_the_product_is_worded_in_the_notices_language_or_refused(
    records: dict[str, pb.Record],
    creditor: LoadedCreditor,
    applicant: NoticeApplicant,
    templates: TemplateSet,
) -> None:
    # One wording serves every language, as written; a wording per language is required in
    # the notice's own (a Spanish notice read "su solicitud de a personal loan").
    english_only = applicant.model_copy(update={"product": {"en": "a personal loan"}})
    assert "application for a personal loan" in " ".join(
        compose(records["applicant"], creditor, english_only, templates, "en").html.split()
    )
    with pytest.raises(NoticeError, match="product has no 'es' wording"):
        compose(records["applicant"], creditor, english_only, templates, "es")
    single = applicant.model_copy(update={"product": "a car loan"})
    spanish = compose(records["applicant"], creditor, single, templates, "es")
    assert "solicitud de a car loan" in " ".join(spanish.html.split())
