"""The API's browsable documentation, served by the service itself: Swagger UI at ``/docs``
(with its OAuth2 redirect page) and ReDoc at ``/redoc``, over ``/openapi.json``.

FastAPI's own pages load both UIs from a public CDN: blank on a network without internet,
and third-party script fetched at view time on this origin. Here their files are the
package's copies under ``static/vendor/<package>-<version>/``, made by
``scripts/vendor_docs.sh`` from the npm registry at pinned versions and listed (version,
tarball, sha256 of each file) in ``static/vendor/VENDORED.json``. The pages follow FastAPI's
recipe for self-hosted docs (``get_swagger_ui_html`` and ``get_redoc_html`` with local
URLs).

Like ``/openapi.json`` they are public: they show the API's shape, no data; every call
made from Swagger UI's "Try it out" still passes the guard. Each page has a
Content-Security-Policy allowing scripts from this origin only plus the page's own inline
script by its hash (Swagger UI's start-up); styles likewise, except ReDoc's, which it adds
inline as it renders (see :func:`content_security_policy`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from expound.web.pages import PAGE_HEADERS

STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"
MANIFEST = VENDOR / "VENDORED.json"
SWAGGER_UI = "swagger-ui-dist"
REDOC = "redoc"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"  # FastAPI's default address for it
REDOC_URL = "/redoc"


@dataclass(frozen=True)
class VendoredPackage:
    """One npm package's files copied into ``static/vendor``, as the manifest lists them."""

    name: str
    version: str
    tarball: str
    integrity: str
    files: dict[str, str]  # file name -> sha256 (hex)

    @property
    def folder(self) -> Path:
        """Where its files are."""
        return VENDOR / f"{self.name}-{self.version}"

    def static_path(self, file: str) -> str:
        """``file``'s path in the static folder.

        Raises:
            KeyError: ``file`` is not one of the vendored files.
        """
        if file not in self.files:
            raise KeyError(f"{file} is not vendored from {self.name}")
        return f"{self.folder.relative_to(STATIC)}/{file}"


@functools.cache
def vendored() -> dict[str, VendoredPackage]:
    """The vendored packages by name, from ``VENDORED.json``."""
    manifest = json.loads(MANIFEST.read_text())
    return {entry["name"]: VendoredPackage(**entry) for entry in manifest["packages"]}


class _InlineBlocks(HTMLParser):
    """Collects the text of a page's inline ``<script>`` and ``<style>`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.blocks and not any(name == "src" for name, _ in attrs):
            self._open = tag
            self.blocks[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.blocks[self._open][-1] += data


def _hashes(blocks: list[str]) -> str:
    return "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"
        for block in blocks
    )


def content_security_policy(html: str, styled_components: bool = False) -> str:
    """The policy for a docs page: this origin only, and the page's own inline blocks by
    hash (a hash, not 'unsafe-inline', so an injected script would not run).

    Swagger UI fetches the document and sends "Try it out" calls to this origin; both UIs
    draw icons as data: images.

    Args:
        html: The page.
        styled_components: The page's script adds ``<style>`` elements as it renders
            (ReDoc's styled-components) and runs its search in a worker made from a blob:
            URL. Its styles are then allowed inline: ReDoc can be given a nonce only as an
            option of its own start-up, not FastAPI's page, and the page shows the public
            API document, nothing a style could leak. Scripts stay this origin's only.
    """
    parser = _InlineBlocks()
    parser.feed(html)
    parser.close()
    # A hash beside 'unsafe-inline' would make browsers ignore 'unsafe-inline'.
    styles = " 'unsafe-inline'" if styled_components else _hashes(parser.blocks["style"])
    workers = "worker-src blob:; " if styled_components else ""
    return (
        "default-src 'none'; "
        f"script-src 'self'{_hashes(parser.blocks['script'])}; "
        f"style-src 'self'{styles}; "
        f"img-src 'self' data:; connect-src 'self'; {workers}form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


@dataclass(frozen=True)
class _Page:
    html: str
    headers: dict[str, str]

    @classmethod
    def of(cls, page: HTMLResponse, styled_components: bool = False) -> _Page:
        html = bytes(page.body).decode()
        policy = content_security_policy(html, styled_components)
        return cls(html, {**PAGE_HEADERS, "content-security-policy": policy})

    def response(self) -> HTMLResponse:
        return HTMLResponse(self.html, headers=self.headers)


def docs_router(app: FastAPI) -> APIRouter:
    """The routes of ``app``'s docs pages (build ``app`` with ``docs_url=None,
    redoc_url=None`` so FastAPI adds no CDN-loading pages of its own; mount the static
    folder as "static" first: the pages' addresses for the files are asked of it).

    Raises:
        ValueError: ``app`` serves no OpenAPI document for the pages to show.
    """
    if app.openapi_url is None:
        raise ValueError("the app serves no OpenAPI document to browse")
    openapi_url = app.openapi_url
    swagger, redoc = vendored()[SWAGGER_UI], vendored()[REDOC]

    def url(package: VendoredPackage, file: str) -> str:
        return str(app.url_path_for("static", path=package.static_path(file)))

    favicon = url(swagger, "favicon-32x32.png")
    swagger_page = _Page.of(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=url(swagger, "swagger-ui-bundle.js"),
            swagger_css_url=url(swagger, "swagger-ui.css"),
            swagger_favicon_url=favicon,
        )
    )
    redirect_page = _Page.of(get_swagger_ui_oauth2_redirect_html())
    redoc_page = _Page.of(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=url(redoc, "redoc.standalone.js"),
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        ),
        styled_components=True,
    )
    router = APIRouter(include_in_schema=False)

    # The pages depend on nothing per request: each is made once, here.
    @router.get(DOCS_URL)
    async def swagger_ui() -> HTMLResponse:
        return swagger_page.response()

    @router.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_redirect() -> HTMLResponse:
        return redirect_page.response()

    @router.get(REDOC_URL)
    async def redoc_ui() -> HTMLResponse:
        return redoc_page.response()

    return router
