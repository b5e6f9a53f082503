"""The record browser in headless Chromium (Debian's, through Playwright): log in, search,
open a record, and see its inclusion proof checked by the page itself: verified for an
intact record, FAILED (and why) for one whose archived bytes were changed afterwards. And
the API docs (/docs, /redoc) rendered with every request that would leave the machine
aborted, as on a network without internet.

The server runs with static tokens on loopback, serving HTTP beside gRPC; decisions are
made through the JSON API. Chromium comes from ``scripts/ensure_chromium.sh``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright, expect

from expound.archive.merkle import leaf_hash
from expound.archive.records import canonical_json
from expound.models.manifest import SECOND_PERSON
from expound.models.registry import ServedModel
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from tests.conftest import GBM
from tests.support.merkle_reference import MerkleTree
from tests.support.security import ROLES, write_policy, write_tokens
from tests.support.server_process import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclasses.dataclass
class Site:
    running: RunningServer
    settings: Settings
    tokens: dict[str, str]
    base: str

    async def explain(self, features: dict[str, Any], decision_id: str) -> str:
        headers = {"authorization": f"Bearer {self.tokens['decider']}"}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30) as client:
            answer = await client.post(
                "/v1/explain",
                json={"model_id": GBM, "features": features, "decision_id": decision_id},
            )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["record_id"])


@pytest.fixture
async def site(settings: Settings, tmp_path: Path) -> AsyncIterator[Site]:
    tokens = write_tokens(tmp_path / "tokens", list(ROLES))
    policy = write_policy(tmp_path / "policy.toml", {role: [role] for role in ROLES})
    served = settings.model_copy(
        update={"tokens_file": tmp_path / "tokens", "policy_file": policy, "http_port": free_port()}
    )
    async with running_server(served) as running:
        yield Site(running, served, tokens, f"http://127.0.0.1:{running.http_port}")


@pytest.fixture
def chromium() -> Path:
    assert CHROMIUM.exists(), "no /usr/bin/chromium: run scripts/ensure_chromium.sh"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def logged_in(browser: Browser, site: Site, role: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{site.base}/ui/records")
    await expect(page).to_have_url(f"{site.base}/ui/login?next=/ui/records")
    await page.fill("#token", site.tokens[role])
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{site.base}/ui/records")
    return page


async def open_by_search(page: Page, site: Site, decision_id: str) -> None:
    await page.fill("#decision_id", decision_id)
    await page.click("#search")
    links = page.locator("a.record-link")
    await expect(links).to_have_count(1)
    await links.first.click()


def tamper(archive: Path, record_id: str, rewrite_leaf: bool) -> None:
    """Changes the archived decision of ``record_id`` as someone with the file could: the
    payload, and with ``rewrite_leaf`` its sha256 and leaf hash too (so only the Merkle
    tree above the leaf still tells)."""
    with sqlite3.connect(archive) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        seq, canonical = conn.execute(
            "SELECT p.seq, p.canonical FROM payloads p JOIN records r USING (seq) "
            "WHERE r.record_id = ?",
            (record_id,),
        ).fetchone()
        body = json.loads(canonical)
        body["response"]["prediction"]["decision"] = "approve"
        forged = canonical_json(body)
        conn.execute("UPDATE payloads SET canonical = ? WHERE seq = ?", (forged, seq))
        if rewrite_leaf:
            conn.execute(
                "UPDATE records SET sha256 = ?, leaf_hash = ? WHERE seq = ?",
                (hashlib.sha256(forged).hexdigest(), leaf_hash(forged), seq),
            )


# True once every image the selector matches has loaded a real picture (a broken or
# missing image has a natural width of 0).
IMAGES_DRAWN = """selector => {
    const images = [...document.querySelectorAll(selector)];
    return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 300);
}"""


async def test_search_then_record_page_shows_the_proof_verified(
    site: Site, browser: Browser, denied_applicant: dict[str, Any]
) -> None:
    record_id = await site.explain(denied_applicant, "loan-browser-1")
    await site.explain(denied_applicant, "loan-browser-2")
    page = await logged_in(browser, site, "auditor")
    await open_by_search(page, site, "loan-browser-1")
    await expect(page).to_have_url(f"{site.base}/ui/records/{record_id}")
    status = page.locator("#proof-status")
    await expect(status).to_have_attribute("data-outcome", "verified")
    await expect(status).to_have_text("verified")
    await expect(page.locator("#proof-steps li")).to_have_count(4)
    await expect(page.locator("#proof-steps li").nth(3)).to_have_text(
        "key as served (not pinned in this browser)"
    )
    await expect(page.locator("#decision")).to_have_text("decline")
    # The reasons read in the third person (the auditor is compliance), each with the
    # applicant's wording beside it where that speaks to the applicant.
    described = site.running.registry.describe(GBM)
    assert isinstance(described, ServedModel)
    codes = await page.locator("#reasons li code").all_text_contents()
    entries = [described.manifest.reason(code) for code in codes]
    assert any(SECOND_PERSON.search(entry.text) for entry in entries)
    await expect(page.locator("#reasons li .reason")).to_have_text(
        [entry.third_person for entry in entries]
    )
    spoken = [entry for entry in entries if SECOND_PERSON.search(entry.text)]
    await expect(page.locator("#reasons li .reason-note")).to_have_text(
        [f"to the applicant: {entry.text}" for entry in spoken]
    )
    await expect(page.locator("svg.bars rect").first).to_be_visible()
    # shap's own waterfall of the record, as a PNG the page loads.
    await page.wait_for_function(IMAGES_DRAWN, arg="figure.plot img", timeout=60_000)
    # Every page that showed the record is in the access log, as gRPC reads are: the list
    # after login, the search, the record page and its plot.
    entries, _ = await site.running.records.access_log(0, 100, record_id)
    assert [(e.principal, e.rpc) for e in entries] == [
        ("auditor", "ListRecords"),
        ("auditor", "ListRecords"),
        ("auditor", "GetRecord"),
        ("auditor", "GetRecord"),
    ]
    # The model page: its schema, and what the two records say about the model.
    await page.click(f"a[href='/ui/models/{GBM}']")
    await expect(page.locator("h1")).to_have_text(f"Model {GBM}")
    await expect(page.locator("table.schema tbody tr")).to_have_count(
        len(described.manifest.features)
    )
    await expect(page.locator("text=over the 2 most recent records")).to_be_visible()
    # One bar per feature the records attribute, and one per reason they gave.
    bars = page.locator("svg.bars")
    await expect(bars).to_have_count(2)
    assert await bars.nth(0).locator("rect").count() == len(described.manifest.features)
    # The cohort plots (beeswarm, mean |SHAP|, reason codes, rates) drawn as PNGs.
    await expect(page.locator("figure.plot img")).to_have_count(4)
    await page.wait_for_function(IMAGES_DRAWN, arg="figure.plot img", timeout=120_000)


@pytest.mark.parametrize(
    ("rewrite_leaf", "why"),
    [
        (False, "FAILED: the record's bytes do not hash to its leaf in the log"),
        (True, "FAILED: the audit path does not lead to the checkpoint's root"),
    ],
)
async def test_a_tampered_record_is_shown_failed_with_why(
    site: Site,
    browser: Browser,
    denied_applicant: dict[str, Any],
    rewrite_leaf: bool,
    why: str,
) -> None:
    record_id = await site.explain(denied_applicant, "loan-tampered")
    await site.explain(denied_applicant, "loan-after")  # the record is not the last leaf
    tamper(site.settings.archive_path, record_id, rewrite_leaf)
    page = await logged_in(browser, site, "auditor")
    await open_by_search(page, site, "loan-tampered")
    status = page.locator("#proof-status")
    await expect(status).to_have_attribute("data-outcome", "failed")
    await expect(status).to_have_text(why)
    # The page shows what the forged payload says, and that it cannot be trusted.
    await expect(page.locator("#decision")).to_have_text("approve")
    # The model page still reads its recent records, the forged one among them.
    await page.goto(f"{site.base}/ui/models/{GBM}")
    await expect(page.locator("text=over the 2 most recent records")).to_be_visible()


async def test_a_role_without_record_reads_sees_403_and_no_token_sees_the_login(
    site: Site, browser: Browser
) -> None:
    page = await logged_in(browser, site, "decider")
    answer = await page.goto(f"{site.base}/ui/records")
    assert answer is not None and answer.status == 403
    await expect(page.locator("h1")).to_have_text("PERMISSION_DENIED")
    fresh = await browser.new_page()
    await fresh.goto(f"{site.base}/ui/models")
    await expect(fresh).to_have_url(f"{site.base}/ui/login?next=/ui/models")
    await fresh.fill("#token", "exp_not-a-token")
    await fresh.click("button[type=submit]")
    await expect(fresh.locator(".problem")).to_have_text("That token is not valid.")


async def test_the_pages_merkle_check_agrees_with_the_reference_tree_everywhere(
    site: Site, browser: Browser
) -> None:
    """Every leaf of every tree up to 33 leaves: the page's script finds the root the
    reference tree has, and none for a wrong index or a path cut short."""
    page = await browser.new_page()
    await page.goto(f"{site.base}/ui/login")
    await page.add_script_tag(url="/static/proof.js")
    cases = []
    for size in range(1, 34):
        leaves = [leaf_hash(f"entry {i}".encode()) for i in range(size)]
        tree = MerkleTree(leaves)
        for index in range(size):
            path = [node.hex() for node in tree.inclusion_proof(index)]
            cases.append((leaves[index].hex(), index, size, path, tree.root().hex()))
    outcomes = await page.evaluate(
        """async (cases) => {
            const out = [];
            for (const [leaf, index, size, path, root] of cases) {
                const hashes = path.map(bytesOfHex);
                const found = await rootFromPath(bytesOfHex(leaf), index, size, hashes);
                const moved = await rootFromPath(bytesOfHex(leaf), (index + 1) % size, size, hashes);
                const cut = hashes.length
                    ? await rootFromPath(bytesOfHex(leaf), index, size, hashes.slice(1))
                    : null;
                out.push([
                    found !== null && hexOf(found) === root,
                    size > 1 && moved !== null && hexOf(moved) === root,
                    cut !== null && hexOf(cut) === root,
                ]);
            }
            return out;
        }""",
        cases,
    )
    assert len(outcomes) == sum(range(1, 34))
    assert all(found for found, _, _ in outcomes)
    assert not any(moved or cut for _, moved, cut in outcomes)


async def test_a_key_pinned_in_the_browser_is_checked(
    site: Site, browser: Browser, denied_applicant: dict[str, Any]
) -> None:
    record_id = await site.explain(denied_applicant, "loan-pinned")
    page = await logged_in(browser, site, "auditor")
    await page.goto(f"{site.base}/ui/records/{record_id}")
    await page.click("summary")
    await page.click("#pin-key")
    await page.reload()
    await expect(page.locator("#proof-status")).to_have_text("verified")
    await expect(page.locator("#proof-steps li").nth(3)).to_have_text("key pinned in this browser")
    # Another key pinned for this log (as if the server now served a key of its own).
    await page.evaluate(
        "localStorage.setItem('expound-log-key:' + JSON.parse("
        "document.getElementById('proof-data').textContent).proof.checkpoint.log_id, "
        "btoa('x'.repeat(32)))"
    )
    await page.reload()
    await expect(page.locator("#proof-status")).to_have_text(
        "FAILED: the log's key is not the key pinned in this browser"
    )


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Chromium's console line when the page's Content-Security-Policy refuses a load.
CSP_REFUSAL = re.compile(r"^(?:Loading|Connecting to) (?:the \w+ )?'([^']+)' violates")


def is_local(url: str) -> bool:
    split = urlsplit(url)
    return split.scheme in ("data", "blob") or split.hostname in LOCAL_HOSTS


@dataclasses.dataclass
class OfflinePage:
    """A page that may reach this machine only: requests elsewhere are aborted and listed
    (``left``), loads the page's Content-Security-Policy refused before any request are
    listed (``refused``), and so are the page's script errors and other console errors."""

    page: Page
    left: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)


async def offline_page(browser: Browser) -> OfflinePage:
    page = await browser.new_page()
    offline = OfflinePage(page)

    async def route(request: Route) -> None:
        if is_local(request.request.url):
            await request.continue_()
        else:
            offline.left.append(request.request.url)
            await request.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            refusal = CSP_REFUSAL.match(message.text)
            if refusal:
                offline.refused.append(refusal.group(1))
            else:
                offline.errors.append(message.text)

    await page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: offline.errors.append(str(error)))
    return offline


async def test_swagger_ui_renders_offline_and_tries_a_call_with_a_token(
    site: Site, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=site.base) as client:
        document = (await client.get("/openapi.json")).json()
    list_models = document["paths"]["/v1/models"]["get"]
    offline = await offline_page(browser)
    page = offline.page
    await page.goto(f"{site.base}/docs")
    await expect(page.locator(".opblock-summary-path[data-path='/v1/models']")).to_be_visible()
    await expect(page.locator(".opblock-summary-path[data-path='/v1/explain']")).to_be_visible()
    # The bearer scheme: authorize with a token, then call an endpoint from the page.
    await page.click("button.authorize")
    await page.locator(".auth-container input[type=text]").fill(site.tokens["auditor"])
    await page.click(".auth-btn-wrapper button.authorize")
    await page.click("button.btn-done")
    tag, operation_id = list_models["tags"][0], list_models["operationId"]
    operation = page.locator(f"#operations-{tag}-{operation_id}")
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    await expect(
        operation.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("200")
    assert offline.left == [], "the page reached outside the machine"
    assert offline.refused == [] and offline.errors == []


async def test_redoc_renders_offline(site: Site, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=site.base) as client:
        document = (await client.get("/openapi.json")).json()
    summary = document["paths"]["/v1/models"]["get"]["summary"]
    offline = await offline_page(browser)
    page = offline.page
    await page.goto(f"{site.base}/redoc")
    await expect(page.locator("h1").first).to_contain_text(document["info"]["title"])
    await expect(page.locator("h2", has_text=summary).first).to_be_visible()
    assert offline.left == [], "the page reached outside the machine"
    # ReDoc's footer shows Redocly's logo from its CDN: the policy refuses it before any
    # request. Nothing of this machine may be refused.
    assert not any(is_local(url) for url in offline.refused), offline.refused
    assert offline.errors == []
