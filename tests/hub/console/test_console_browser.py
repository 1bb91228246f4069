"""The console in a real browser: headless Chromium driven by Playwright against a real hub,
a real Flower SuperLink and two factories joined with `fedpark factory join`.

Each step saves a screenshot under test-artifacts/console/ (what a first-time user sees).
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from federation import ParkSetup, start_park
from harness import fedpark_argv
from playwright.sync_api import Page, expect

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParkSetup]:
    park = start_park(tmp_path_factory.mktemp("console-park"), s3_server, rows=600)
    yield park
    park.stop()


UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href]'))
  .filter(el => el.getClientRects().length > 0)
  .filter(el => {
    const labels = el.labels ? Array.from(el.labels).map(l => l.textContent).join('') : '';
    const text = ['A', 'BUTTON'].includes(el.tagName) ? el.textContent : '';
    const name = labels || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || text || el.getAttribute('title') || '';
    return !name.trim();
  }).map(el => el.outerHTML.slice(0, 160))"""


# Tab order follows the document (no positive tabindex), so the first focusable element is
# the one the keyboard reaches first.
FIRST_IN_TAB_ORDER = """() => {
  if (document.querySelector('[tabindex]:not([tabindex="0"]):not([tabindex="-1"])')) return null;
  const first = document.querySelector(
    'a[href], button, input:not([type=hidden]), select, textarea');
  return first ? first.textContent : null;
}"""


# The participation grid: as many header cells as cells in each row, each aligned as the
# cells below it. Returns what is wrong (empty: nothing).
HEADERS_OVER_THEIR_CELLS = """() => {
  const table = document.querySelector('table.participation');
  const heads = Array.from(table.querySelectorAll('thead th'));
  const wrong = [];
  for (const row of table.querySelectorAll('tbody tr')) {
    const cells = Array.from(row.children);
    if (cells.length !== heads.length) wrong.push(`${cells.length} cells, ${heads.length} heads`);
    cells.forEach((cell, i) => {
      const [h, c] = [heads[i], cell].map(el => el.getBoundingClientRect());
      const align = getComputedStyle(heads[i]).textAlign === getComputedStyle(cell).textAlign;
      if (Math.abs(h.left - c.left) > 1 || !align) wrong.push(`column ${i}`);
    });
  }
  return wrong;
}"""

# Every chart's legend above its plot area (the top grid line): no line runs through it.
LEGEND_CLEAR_OF_LINES = """() => Array.from(document.querySelectorAll('svg.chart')).flatMap(svg => {
  const grid = Array.from(svg.querySelectorAll('line.grid')).map(l => l.getBBox().y);
  if (!grid.length) return [];
  const top = Math.min(...grid);
  return Array.from(svg.querySelectorAll('.legend-entry'))
    .filter(g => { const b = g.getBBox(); return b.y + b.height > top; })
    .map(g => g.textContent);
})"""


def snap(page: Page, path: Path) -> None:
    """Check what every page must offer, then keep a screenshot of it.

    Every visible control has an accessible name (a label, or its text), the page has one
    main heading, a language, and a skip link that the keyboard reaches first.
    """
    assert page.evaluate(UNNAMED_CONTROLS) == [], f"controls without a name on {page.url}"
    assert page.locator("h1").count() == 1 and page.locator("html[lang]").count() == 1
    assert page.evaluate(FIRST_IN_TAB_ORDER) == "Skip to content"
    page.screenshot(path=path, full_page=True)


def sign_in(page: Page, park: ParkSetup, who: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{park.hub.url}/console/sign-in")
    page.get_by_label("API token").fill(park.people[who].token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {who}")).to_be_visible()


def test_steward_approves_a_submitted_contract(
    page: Page, setup: ParkSetup, screenshots: Path
) -> None:
    # Version 1.1.0 of the park's contract: a wider temperature range (a compatible change).
    data = copy.deepcopy(setup.contract) | {"version": "1.1.0"}
    temp = next(c for c in data["columns"] if c["name"] == "temp")
    temp["rules"]["max"] = 150
    base = f"/contracts/{data['id']}/versions/{data['version']}"
    with setup.hub.client(setup.people["acme-op"].token) as owner:
        assert owner.post("/contracts", json=data).status_code == 201
        assert owner.post(f"{base}/submit").status_code == 200

    page.goto(f"{setup.hub.url}/console/review")  # not signed in: the sign-in form, then back
    expect(page.get_by_role("heading", name="Sign in to FedPark")).to_be_visible()
    snap(page, screenshots / "01-sign-in.png")
    page.get_by_label("API token").fill(setup.people["steward"].token)
    page.get_by_label("API token").press("Enter")  # the keyboard is enough
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    snap(page, screenshots / "02-steward-review-queue.png")

    page.get_by_role("row", name=data["id"]).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Columns")).to_be_visible()
    expect(page.get_by_role("cell", name="temp", exact=True)).to_be_visible()
    changes = page.get_by_role("table").filter(has_text="Change").first
    expect(changes).to_contain_text("columns.temp")  # the difference from 1.0.0
    expect(page.get_by_text("backward compatible")).to_be_visible()
    declared = page.get_by_role("heading", name="Factories that declared data under version 1.0.0")
    expect(declared).to_be_visible()
    expect(page.get_by_role("cell", name="bravo", exact=True)).to_be_visible()
    page.get_by_text("columns (k =").first.click()  # a factory's profile opens in place
    expect(page.get_by_role("cell", name="pressure", exact=True).first).to_be_visible()
    snap(page, screenshots / "03-steward-contract.png")
    page.get_by_role("button", name="Approve and sign").click()
    expect(page.get_by_text("Approved and signed.")).to_be_visible()
    expect(page.locator("#contract-status")).to_have_text("approved")
    snap(page, screenshots / "04-steward-approved.png")
    with setup.hub.client(setup.people["steward"].token) as api:
        row = api.get(base).json()
    assert row["status"] == "approved" and row["signed"] and row["decided_by"] == "steward"


def test_researcher_launches_and_watches_then_partner_downloads_the_model(
    page: Page, setup: ParkSetup, screenshots: Path, tmp_path: Path
) -> None:
    contract = f"{setup.contract['id']}@{setup.contract['version']}"
    sign_in(page, setup, "alice")
    page.goto(f"{setup.hub.url}/console/experiments/new?contract={contract}")
    expect(page.get_by_role("heading", name="Launch a federated experiment")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("line temperature")
    page.get_by_label("Rounds").fill("0")
    page.get_by_role("button", name="Launch").click()  # the browser refuses 0 (min=1) ...
    expect(page.get_by_role("heading", name="Launch a federated experiment")).to_be_visible()
    page.get_by_label("Rounds").fill("2")
    page.get_by_label("Minimum factories per round").fill("1")  # ... the hub refuses k=1
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("#form-errors")).to_contain_text("min_factories must be at least")
    snap(page, screenshots / "05-researcher-launch-refused.png")
    page.get_by_label("Minimum factories per round").fill("2")
    page.get_by_role("button", name="Launch").click()

    expect(page.get_by_role("heading", name="line temperature")).to_be_visible()
    experiment = page.url.rsplit("/", 1)[-1]
    snap(page, screenshots / "06-researcher-experiment-started.png")
    # The page refreshes itself: the first round's metrics and chart points appear.
    expect(page.locator("#metrics-table tbody tr")).to_have_count(1, timeout=180_000)
    expect(page.locator("svg.chart polyline").first).to_be_attached()
    expect(page.locator("table.participation td.cell-trained").first).to_be_visible()
    snap(page, screenshots / "07-researcher-round-1.png")
    expect(page.locator("#run-status")).to_have_text("finished", timeout=180_000)
    expect(page.locator("#metrics-table tbody tr")).to_have_count(2)
    expect(page.locator("td.cell-trained")).to_have_count(4)  # 2 factories, 2 rounds
    expect(page.locator("table[aria-describedby=gains] tbody tr")).to_have_count(4)
    assert page.evaluate(HEADERS_OVER_THEIR_CELLS) == [], "participation headers misaligned"
    assert page.evaluate(LEGEND_CLEAR_OF_LINES) == [], "a chart's legend is in its plot area"
    snap(page, screenshots / "08-researcher-finished.png")

    sign_in(page, setup, "buyer")
    expect(page.get_by_role("heading", name="Models you may download")).to_be_visible()
    snap(page, screenshots / "09-partner-models.png")
    page.get_by_role("link", name=experiment).click()
    expect(page.get_by_role("heading", name="Provenance")).to_be_visible()
    expect(page.locator("#verify-command")).to_contain_text("fedpark model verify")
    expect(page.get_by_role("heading", name="What each factory gained")).to_be_visible()
    expect(page.locator("table[aria-describedby=gains] tbody tr")).to_have_count(4)  # 2 x 2
    expect(page.locator("#run-commands")).to_contain_text("fedpark model predict")
    snap(page, screenshots / "10-partner-model.png")
    files = {}
    for part in ("weights", "manifest", "signature"):
        with page.expect_download() as download:
            page.locator(f"#download-{part}").click()
        files[part] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[part])
    with page.expect_download() as download:
        page.get_by_role("link", name="Hub public key").click()
    download.value.save_as(tmp_path / "hub-key.pem")

    manifest = json.loads(files["manifest"].read_text())
    weights_sha = hashlib.sha256(files["weights"].read_bytes()).hexdigest()
    assert manifest["weights"]["sha256"] == weights_sha
    assert sorted(manifest["participants"]) == ["acme", "bravo"]
    # The command shown beside the downloads verifies them, as written there.
    command = page.locator("#verify-command").inner_text().replace("\\\n", " ").split()
    assert command[:3] == ["fedpark", "model", "verify"]
    verified = subprocess.run(
        fedpark_argv(*command[1:]), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    sign_in(page, setup, "spy")  # a partner the policy does not name sees no model
    expect(page.get_by_text("No model is available to your organization yet")).to_be_visible()
    assert page.request.get(f"{setup.hub.url}/console/models/{experiment}").status == 404


def test_factory_sees_its_datasets_and_cannot_reach_steward_pages(
    page: Page, setup: ParkSetup, screenshots: Path
) -> None:
    sign_in(page, setup, "acme-op")
    expect(page.get_by_role("heading", name="acme: datasets and federation")).to_be_visible()
    expect(page.get_by_role("cell", name="passed")).to_be_visible()
    expect(page.locator("#join-command")).to_contain_text("fedpark factory join --hub")
    snap(page, screenshots / "11-factory-datasets.png")
    expect(page.get_by_role("link", name="Review queue")).to_have_count(0)
    response = page.goto(f"{setup.hub.url}/console/review")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("this page is for the roles: steward")
    snap(page, screenshots / "12-factory-denied-review.png")


def test_admin_sees_organizations_members_and_a_verified_audit_chain(
    page: Page, setup: ParkSetup, screenshots: Path
) -> None:
    page.goto(f"{setup.hub.url}/console/sign-in")
    page.get_by_label("API token").fill(setup.hub.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    expect(page.get_by_role("cell", name="carmaker", exact=True).first).to_be_visible()
    snap(page, screenshots / "13-admin-organizations.png")
    page.get_by_role("link", name="Users & tokens").click()
    page.get_by_label("Token name").first.fill("laptop")
    page.get_by_role("button", name="Issue token").first.click()
    expect(page.locator("#token-secret")).to_contain_text("fpk_")
    snap(page, screenshots / "14-admin-users-tokens.png")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#chain-status")).to_contain_text("Chain verified")
    expect(page.get_by_role("cell", name="console.sign_in").first).to_be_visible()
    snap(page, screenshots / "15-admin-audit.png")
