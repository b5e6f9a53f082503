"""The record browser: server-rendered pages for people, under the same roles as the API.

Pages: ``/ui/records`` (search by model, decision id, dates), ``/ui/records/{id}`` (the
decision, its attribution waterfall, reasons, every candidate with its verdict and scores,
the selected text, and the inclusion proof that a script in the page checks against the
signed checkpoint), ``/ui/models`` and ``/ui/models/{id}`` (schema, global importance and
reason frequencies of the recent records the caller may read).

Login: with authentication on, ``/ui/login`` takes a bearer token once and keeps it in an
HttpOnly, SameSite=Strict cookie (Secure over TLS), which no script can read. Pages only
read; the two forms that change the session (login, logout) are refused unless the browser
says they come from this origin (``Origin``, else ``Sec-Fetch-Site``), so another site can
neither log a visitor in under its token nor out.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from expound.archive.checkpoint import verifier_key
from expound.archive.records import StoredRecord
from expound.archive.store import RecordFilter
from expound.domain import Explanation
from expound.errors import (
    ArchiveUnavailable,
    FieldViolation,
    InvalidRequest,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
)
from expound.models.registry import ServedModel, UnavailableModel
from expound.server.convert import explanation_to_pb
from expound.server.errors import log_service_error
from expound.times import format_utc
from expound.web.api import service_of
from expound.web.errors import HTTP_STATUS, request_id_of
from expound.web.figures import cohort, waterfall
from expound.web.guard import SESSION_COOKIE, HttpCall
from expound.web.schemas import InclusionProofBody, ModelBody

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)
# Recent records a model page reads for its cohort view.
COHORT_RECORDS = 200
MAX_LOGIN_BYTES = 8192
# Scripts and styles from this origin only (no inline script runs: the proof data is JSON
# in a non-executed script element), no framing, no referrer with record ids to other sites
# (not "no-referrer": Chromium would then send "Origin: null" with the login form).
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    service = service_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "login_required": service.guard.login_required,
            # Signed in by the login form (a session to end), or by a client certificate
            # (neither a session nor a bearer header: nothing to log out of).
            "session": bool(request.cookies.get(SESSION_COOKIE)),
            "by_certificate": not request.cookies.get(SESSION_COOKIE)
            and "authorization" not in request.headers,
            **context,
        },
        status_code=status,
        headers=PAGE_HEADERS,
    )


def _refused(request: Request, error: ServiceError) -> Response:
    """A page for an error: the login form for a missing credential, else the error page."""
    log_service_error(error, request_id_of(request))
    request.state.code = error.code.name
    if isinstance(error, Unauthenticated):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)
    return _page(
        request,
        "error.html",
        HTTP_STATUS[error.code],
        code=error.code.name,
        message=error.message,
        violations=getattr(error, "violations", []),
        request_id=request_id_of(request),
    )


def _admit(request: Request, rpc: str) -> HttpCall:
    return service_of(request).guard.admit(request, rpc, cookie=True)


def _day(text: str, field: str, next_day: bool = False) -> str:
    if not text:
        return ""
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise InvalidRequest(
            "invalid search", [FieldViolation(field, "not a date (YYYY-MM-DD)")]
        ) from error
    moment = datetime.combine(day + timedelta(days=1 if next_day else 0), time(), UTC)
    return format_utc(moment)


@router.get("/records", response_class=HTMLResponse)
async def search(
    request: Request,
    model_id: str = "",
    decision_id: str = "",
    since: str = "",
    until: str = "",
    page_token: str = "",
) -> Response:
    """Record search: by model, decision id and creation dates (``until`` inclusive)."""
    form = {"model_id": model_id, "decision_id": decision_id, "since": since, "until": until}
    try:
        call = _admit(request, "ListRecords")
        where = RecordFilter(
            model_id=model_id[:200],
            decision_id=decision_id[:200],
            since=_day(since, "since"),
            until=_day(until, "until", next_day=True),
        )
        page = await service_of(request).records.list_records(
            where, 50, page_token[:32], call.caller
        )
    except ServiceError as error:
        return _refused(request, error)
    models = [model.manifest.model_id for model in service_of(request).registry.all()]
    return _page(
        request,
        "search.html",
        form=form,
        models=models,
        records=page.records,
        next_page_token=page.next_page_token,
        principal=call.principal,
    )


def _proof_data(record: Any, proof: Any, key: Ed25519PublicKey | None) -> dict[str, Any]:
    """What the page's script checks: the record's bytes, the proof, the checkpoint, the key."""
    raw = (
        key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if key is not None
        else b""
    )
    return {
        "canonical_base64": base64.b64encode(record.canonical).decode("ascii"),
        "proof": InclusionProofBody.of(proof).model_dump() if proof is not None else None,
        "public_key_base64": base64.b64encode(raw).decode("ascii"),
    }


@router.get("/records/{record_id}", response_class=HTMLResponse)
async def record_page(request: Request, record_id: str) -> Response:
    """One record: decision, waterfall, reasons, candidates, selected text, proof."""
    service = service_of(request)
    try:
        call = _admit(request, "GetRecord")
        try:
            record, proof = await service.records.get_record(record_id[:200], True, call.caller)
            waiting = ""
        except ArchiveUnavailable as error:
            # No signed checkpoint covers the record yet: show it, proof to follow.
            record, proof = await service.records.get_record(record_id[:200], False, call.caller)
            waiting = error.message
    except ServiceError as error:
        return _refused(request, error)
    explanation: Explanation | None = None
    unreadable = ""
    if record.kind == "record" and not record.expired:
        try:
            explanation = record.explanation()
        except (ValueError, KeyError) as error:
            unreadable = f"the stored payload is not a readable record ({type(error).__name__})"
    key = service.log_key
    data = _proof_data(record, proof, key)
    return _page(
        request,
        "record.html",
        record=record,
        explanation=explanation,
        unreadable=unreadable,
        bars=waterfall(explanation.attributions) if explanation else [],
        proof=proof,
        waiting=waiting,
        # "<" escaped: the JSON sits in a <script> element, which "</script>" would end.
        proof_json=json.dumps(data).replace("<", "\\u003c"),
        verifier_key=verifier_key(proof.checkpoint.log_id, key) if key and proof else "",
        principal=call.principal,
    )


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request) -> Response:
    """Every model directory, served or unavailable."""
    registry = service_of(request).registry
    try:
        call = _admit(request, "ListModels")
    except ServiceError as error:
        return _refused(request, error)
    described: list[ServedModel | UnavailableModel] = [*registry.all(), *registry.unavailable()]
    models = [ModelBody.of(model) for model in described]
    return _page(request, "models.html", models=models, principal=call.principal)


def _readable(records: list[StoredRecord]) -> Iterator[Explanation]:
    """The explanations of ``records`` that still hold one (not events, not expired, not
    unreadable: a payload that no longer parses is the record page's to show)."""
    for record in records:
        if record.kind == "record" and not record.expired:
            try:
                yield record.explanation()
            except (ValueError, KeyError):
                continue


def _png(content: bytes) -> Response:
    headers = {**PAGE_HEADERS, "cache-control": "private, max-age=60"}
    return Response(content, media_type="image/png", headers=headers)


@router.get("/records/{record_id}/waterfall.png")
async def record_waterfall(request: Request, record_id: str) -> Response:
    """The record's attribution waterfall as shap draws it (PNG, from ``expound.plots``)."""
    from expound.plots.decision import waterfall_png

    service = service_of(request)
    try:
        call = _admit(request, "GetRecord")
        record, _ = await service.records.get_record(record_id[:200], False, call.caller)
    except ServiceError as error:
        return _refused(request, error)
    explanations = list(_readable([record]))
    if not explanations:
        return Response(status_code=404)
    response = explanation_to_pb(explanations[0])
    return _png(await asyncio.to_thread(waterfall_png, response))


@router.get("/models/{model_id}/plots/{name}.png")
async def cohort_plot(request: Request, model_id: str, name: str) -> Response:
    """One cohort plot of the model's recent records the caller may read (PNG): beeswarm,
    mean |SHAP|, reason codes, or fallback and gate-rejection rates over time."""
    from expound.clients.frames import responses_to_frame
    from expound.plots.cohort import COHORT_PLOTS, cohort_pngs

    if name not in COHORT_PLOTS:
        return Response(status_code=404)
    service = service_of(request)
    try:
        _admit(request, "GetModel")
        lister = _admit(request, "ListRecords")
        page = await service.records.list_records(
            RecordFilter(model_id=model_id[:200]), COHORT_RECORDS, "", lister.caller
        )
    except ServiceError as error:
        return _refused(request, error)
    responses = [explanation_to_pb(e) for e in _readable(page.records)]
    if not responses:
        return Response(status_code=404)

    def render() -> bytes:
        return cohort_pngs(responses_to_frame(responses), only=(name,))[name]

    return _png(await asyncio.to_thread(render))


@router.get("/models/{model_id}", response_class=HTMLResponse)
async def model_page(request: Request, model_id: str) -> Response:
    """A model: schema, global importance and reason frequencies of recent records."""
    service = service_of(request)
    try:
        call = _admit(request, "GetModel")
        described = service.registry.describe(model_id[:200])
    except ServiceError as error:
        return _refused(request, error)
    view = None
    refused = ""
    if isinstance(described, ServedModel):
        try:
            lister = _admit(request, "ListRecords")
            page = await service.records.list_records(
                RecordFilter(model_id=described.manifest.model_id),
                COHORT_RECORDS,
                "",
                lister.caller,
            )
            view = cohort(_readable(page.records))
        except (PermissionDenied, Unauthenticated):
            refused = "your roles do not allow reading records, so no recent records are shown"
        except ServiceError as error:
            log_service_error(error, request_id_of(request))
            refused = f"recent records cannot be read now: {error.message}"
    return _page(
        request,
        "model.html",
        model=ModelBody.of(described),
        view=view,
        refused=refused,
        principal=call.principal,
    )


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from a page of this origin (CSRF check)."""
    origin = request.headers.get("origin")
    if origin is not None:
        sent = urlsplit(origin)
        return (sent.scheme, sent.netloc) == (request.url.scheme, request.url.netloc)
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def _local_target(target: str) -> str:
    # Only a path of this site: "//evil.example" or "https://..." would be an open redirect.
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/records"


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/ui/records") -> Response:
    """The login form: one bearer token."""
    return _page(request, "login.html", next=_local_target(next), problem="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Checks the token and keeps it in the session cookie."""
    if not _same_origin(request):
        return _refused(request, PermissionDenied("cross-site form refused"))
    raw = await request.body()
    form = parse_qs(raw[:MAX_LOGIN_BYTES].decode("utf-8", "replace"))
    token = form.get("token", [""])[0].strip()
    target = _local_target(form.get("next", ["/ui/records"])[0])
    try:
        service_of(request).guard.check_token(token)
    except Unauthenticated:
        return _page(request, "login.html", 401, next=target, problem="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forgets the session cookie."""
    if not _same_origin(request):
        return _refused(request, PermissionDenied("cross-site form refused"))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response
