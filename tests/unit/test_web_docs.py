"""The API docs pages (/docs, /redoc) are served from the package's own vendored files: the
files are those the manifest lists, byte for byte, and ship in the package; the pages
reference nothing outside the service, are public like /openapi.json, and carry a
Content-Security-Policy of this origin plus their own inline blocks by hash.

The server runs with static tokens on loopback, serving HTTP beside gRPC.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from expound.server.app import running_server
from expound.settings import Settings
from expound.web.docs import DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL, VENDOR, vendored
from expound.web.pages import PAGE_HEADERS
from tests.conftest import ROOT
from tests.support.security import write_policy, write_tokens
from tests.support.server_process import free_port

PAGES = (DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL)
# Attributes whose value the browser fetches or navigates to.
URL_ATTRIBUTES = {"src", "href", "action", "spec-url", "data", "poster", "srcset"}
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s'"`)]+""")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PageParts(HTMLParser):
    """The addresses a page's elements name, and the text of its inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.addresses: list[str] = []
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.addresses += [v for k, v in attrs if k in URL_ATTRIBUTES and v is not None]
        if tag in self.inline and not any(k == "src" for k, _ in attrs):
            self._open = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.inline[self._open][-1] += data


def parts_of(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    parts.close()
    return parts


@dataclasses.dataclass
class Site:
    base: str
    token: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)


@pytest.fixture
async def site(settings: Settings, tmp_path: Path) -> AsyncIterator[Site]:
    tokens = write_tokens(tmp_path / "tokens", ["auditor"])
    policy = write_policy(tmp_path / "policy.toml", {"auditor": ["auditor"]})
    served = settings.model_copy(
        update={"tokens_file": tmp_path / "tokens", "policy_file": policy, "http_port": free_port()}
    )
    async with running_server(served) as running:
        yield Site(f"http://127.0.0.1:{running.http_port}", tokens["auditor"])


def test_the_vendored_files_are_the_manifests_byte_for_byte() -> None:
    packages = vendored()
    assert set(packages) == {"swagger-ui-dist", "redoc"}
    folders = {p.folder for p in packages.values()}
    # No folder of an older version left behind by an update.
    assert {p for p in VENDOR.iterdir() if p.is_dir()} == folders
    for package in packages.values():
        assert package.integrity.startswith("sha512-")
        assert package.tarball.endswith(f"/{package.name}-{package.version}.tgz")
        assert "LICENSE" in package.files
        assert sorted(p.name for p in package.folder.iterdir()) == sorted(package.files)
        for name, digest in package.files.items():
            assert sha256((package.folder / name).read_bytes()) == digest, (
                f"{package.folder.name}/{name} differs from VENDORED.json: "
                "run scripts/vendor_docs.sh instead of editing it"
            )


def test_the_package_data_globs_take_every_vendored_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["expound.web"]
    web = VENDOR.parent.parent
    shipped = [VENDOR / "VENDORED.json"] + [
        package.folder / name for package in vendored().values() for name in package.files
    ]
    for path in shipped:
        relative = path.relative_to(web).as_posix()
        # setuptools globs: "*" does not cross a folder.
        assert any(
            fnmatch.fnmatch(relative, glob) and relative.count("/") == glob.count("/")
            for glob in globs
        ), f"{relative} is in no package-data glob of expound.web"


async def test_docs_pages_reference_nothing_outside_the_service(site: Site) -> None:
    served_files = 0
    async with site.client() as anonymous:
        for page in PAGES:
            answer = await anonymous.get(page)
            assert answer.status_code == 200, (page, answer.text)
            parts = parts_of(answer.text)
            if page != OAUTH2_REDIRECT_URL:
                assert parts.addresses, f"{page} names no file: nothing was checked"
            for address in parts.addresses:
                split = urlsplit(address)
                assert not split.scheme and not split.netloc, (page, address)
                assert split.path.startswith("/"), (page, address)
                fetched = await anonymous.get(address)
                assert fetched.status_code == 200, (page, address)
                served_files += address.startswith("/static/vendor/")
            for block in parts.inline["script"] + parts.inline["style"]:
                assert ABSOLUTE_URL.findall(block) == [], (page, block)
    # Swagger UI's script, style and icon; ReDoc's script (and the same icon).
    assert served_files >= 5


async def test_vendored_files_are_served_as_committed(site: Site) -> None:
    async with site.client() as anonymous:
        for package in vendored().values():
            for name, digest in package.files.items():
                answer = await anonymous.get(f"/static/vendor/{package.folder.name}/{name}")
                assert answer.status_code == 200
                assert sha256(answer.content) == digest


async def test_docs_are_public_like_the_openapi_document_while_the_api_is_not(
    site: Site,
) -> None:
    async with site.client() as anonymous:
        assert (await anonymous.get("/v1/models")).status_code == 401
        assert (await anonymous.get("/openapi.json")).status_code == 200
        for page in PAGES:
            assert (await anonymous.get(page)).status_code == 200


def policy_of(answer: httpx.Response) -> dict[str, list[str]]:
    directives = answer.headers["content-security-policy"].split(";")
    return {d.split()[0]: d.split()[1:] for d in (d.strip() for d in directives) if d}


def hash_source(block: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"


async def test_docs_pages_allow_this_origin_and_their_own_inline_blocks_only(
    site: Site,
) -> None:
    async with site.client() as anonymous:
        for page in PAGES:
            answer = await anonymous.get(page)
            policy = policy_of(answer)
            parts = parts_of(answer.text)
            assert policy["default-src"] == ["'none'"]
            assert policy["frame-ancestors"] == ["'none'"]
            assert policy["script-src"] == ["'self'", *map(hash_source, parts.inline["script"])]
            # ReDoc adds <style> elements as it renders: inline styles, and no hash that
            # would make the browser ignore 'unsafe-inline'.
            styles = (
                ["'unsafe-inline'"]
                if page == REDOC_URL
                else list(map(hash_source, parts.inline["style"]))
            )
            assert policy["style-src"] == ["'self'", *styles], page
            assert answer.headers["x-content-type-options"] == "nosniff"
        # Swagger UI starts from an inline script: allowed by its hash, not 'unsafe-inline'.
        docs = await anonymous.get(DOCS_URL)
        assert parts_of(docs.text).inline["script"], "no inline script to allow: test is moot"
        # The record pages keep their stricter policy.
        login = await anonymous.get("/ui/login")
        assert login.headers["content-security-policy"] == PAGE_HEADERS["content-security-policy"]


async def test_every_api_operation_documents_the_bearer_token(site: Site) -> None:
    """So Swagger UI offers "Authorize" and sends the token with "Try it out"."""
    async with site.client() as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert operations
    for operation in operations:
        assert operation["security"] == [{name: []}], operation["operationId"]
