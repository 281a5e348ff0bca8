"""Issue 7: the journey starts with a real click in a real browser (Debian's Chromium, driven by
Playwright), and that click is the root of the purchase's trace: web -> API -> worker.
Issue 13: the order page draws that trace as a live waterfall, lists the order's log lines
beneath it (a click highlights a line's span), and opens the slowest checkout's trace."""

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from labctl.config import ROOT
from labkit import progress
from labkit.prometheus import Prometheus
from tests.helpers import get_json, lab_command, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("storefront")]

CHROMIUM = "/usr/bin/chromium"
# The machine's network is closed: without these, Chromium keeps trying to reach Google.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WEB, API, WORKER = (f"kodekloud-record-store-{name}" for name in ("web", "api", "worker"))
SCREENSHOT = ROOT / "artifacts" / "storefront-confirmed.png"
README_SCREENSHOT = ROOT / "docs" / "storefront.png"
EMAIL = "learner@example.com"
ORDER_URL = re.compile(r"#/order/\d+$")
CHECKOUT_HISTOGRAM = 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./lab test installs Debian's chromium (as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def open_store(page: Page, lab) -> None:
    page.goto(lab.url("GATEWAY_PORT", "/"))


def trace_of(lab, trace_id: str) -> dict | None:
    try:
        body = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{trace_id}"))
    except OSError:
        return None
    return body["data"][0] if body.get("data") else None


def spans_by_service(trace: dict) -> dict[str, list[dict]]:
    services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    found: dict[str, list[dict]] = {}
    for span in trace["spans"]:
        found.setdefault(services[span["processID"]], []).append({**span, "service":
                                                                  services[span["processID"]]})
    return found


def parent_of(span: dict) -> str | None:
    return next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)


def ancestry(span: dict, by_id: dict[str, dict]) -> list[dict]:
    """The span's ancestors, nearest first; stops where a parent is not in the trace."""
    chain = []
    while (parent := by_id.get(parent_of(span) or "")) is not None:
        chain.append(parent)
        span = parent
    return chain


def test_the_store_says_when_the_telemetry_is_warm(lab, page):
    """The footer's line reads the trace store and Prometheus through the gateway: on the
    suite's stack (traces stored, every target up) it says ready."""
    open_store(page, lab)
    line = page.locator("#telemetry-readiness")
    expect(line).to_have_attribute("data-ready", "true", timeout=30_000)
    expect(line).to_contain_text("Telemetry ready")
    expect(line).to_contain_text("scrape targets up")


def test_the_store_shows_the_learners_progress(lab, page):
    """#/progress: every exercise, with what the checks recorded (labkit/progress.py)."""
    first, second = progress.exercises()[:2]
    progress.record(first, True, ["trace_id"], [], home=lab.home)
    open_store(page, lab)
    page.get_by_role("link", name="Your progress").click()
    table = page.locator("#progress-table")
    expect(table.locator("tbody tr")).to_have_count(len(progress.exercises()))
    expect(table.locator(f'tr[data-exercise="{first}"]')).to_contain_text("passed")
    record = progress.load(lab.home)
    expected = record[second]["status"] if second in record else progress.NOT_STARTED
    expect(table.locator(f'tr[data-exercise="{second}"] td').nth(1)).to_have_text(expected)
    expect(page.locator("#progress-summary")).to_contain_text(
        f"of {len(progress.exercises())} passed")


def test_a_click_started_purchase_is_one_trace_from_the_browser(lab, page):
    open_store(page, lab)
    page.get_by_role("button", name="Jazz", exact=True).click()
    expect(page.get_by_role("button", name="Jazz", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    expect(page.locator(".result-count")).to_contain_text("in Jazz")
    cards = page.locator(".card-link")
    expect(cards.first).to_be_visible()
    assert all("Jazz" in meta for meta in page.locator(".card-meta").all_inner_texts())

    cards.first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_label("E-mail for the receipt").fill(EMAIL)
    page.get_by_label("Quantity").fill("2")
    page.get_by_label("PayPal").check()
    page.get_by_role("button", name="Buy now").click()

    expect(page).to_have_url(ORDER_URL)
    status = page.get_by_role("status").filter(has_text="Status")
    expect(status.locator("[data-status]")).to_have_attribute(
        "data-status", "confirmed", timeout=45_000)
    expect(page.get_by_text(f"Receipt for {EMAIL}")).to_be_visible()
    trace_id = page.locator("#order-trace-id").inner_text().strip()
    correlation_id = page.locator("#order-correlation-id").inner_text().strip()
    assert len(trace_id) == 32 and correlation_id.startswith("web-")
    # On the port the lab gives Jaeger (the test stack's is not .env's): /gateway/links.
    expect(page.get_by_role("link", name="The trace as JSON")).to_have_attribute(
        "href", re.compile(f":{lab.port('JAEGER_UI_PORT')}/api/traces/{trace_id}$"))

    the_order_page_shows_its_trace_and_logs(page)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    # README's picture is committed: refresh it on request, not on every run.
    if not README_SCREENSHOT.exists() or lab.env.get("UPDATE_README_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(SCREENSHOT, README_SCREENSHOT)

    def complete():
        trace = trace_of(lab, trace_id)
        if trace is None:
            return None
        found = spans_by_service(trace)
        names = {s["operationName"] for s in found.get(WORKER, [])}
        ready = found.get(WEB) and found.get(API) and {"process_order", "reserve_stock"} <= names
        return trace if ready else None

    trace = wait_for(complete, 30, f"trace {trace_id} with web, API and worker spans")
    by_id = {s["spanID"]: s for spans in spans_by_service(trace).values() for s in spans}
    roots = [s for s in by_id.values() if parent_of(s) is None]
    assert [(r["service"], r["operationName"]) for r in roots] == [(WEB, "buy_record")]
    root = roots[0]
    tags = {t["key"]: t["value"] for t in root["tags"]}
    assert tags["recordstore.correlation_id"] == correlation_id
    assert tags["recordstore.payment.method"] == "paypal"
    assert tags["recordstore.order.quantity"] == 2

    orphans = [s["operationName"] for s in by_id.values()
               if s is not root and root not in ancestry(s, by_id)]
    assert not orphans, f"spans not beneath the click: {orphans}"
    server = next(s for s in by_id.values()
                  if s["service"] == API and s["operationName"] == "POST /checkout"
                  and by_id[parent_of(s)]["service"] == WEB)
    assert by_id[parent_of(server)] is not root, "the browser's fetch span sits between"
    worker = next(s for s in by_id.values() if s["operationName"] == "process_order")
    chain = ancestry(worker, by_id)
    assert server in chain and chain[-1] is root

    the_slowest_checkout_opens_its_trace(lab, page, trace_id)


def the_order_page_shows_its_trace_and_logs(page: Page) -> None:
    """The waterfall grows to the worker's e-mail; a worker's log line highlights its span."""
    waterfall = page.locator(".journey .waterfall")
    email = waterfall.locator('tr[data-operation="send_email"]')
    expect(email).to_be_visible(timeout=30_000)
    expect(email).to_have_attribute("data-service", "worker")
    expect(waterfall.locator('tr[data-operation="buy_record"][data-service="web"]')).to_be_visible()
    expect(waterfall.locator('tr[data-operation="checkout_order"]')).to_be_visible()

    logs = page.locator(".journey-logs")
    worker_line = logs.locator('li[data-source="worker"][data-span-id]').first
    expect(worker_line).to_be_visible(timeout=30_000)
    expect(logs.locator('li[data-source="gateway"]').first).to_be_visible()
    expect(logs.locator('li[data-source="api"]').first).to_be_visible()
    span_id = worker_line.get_attribute("data-span-id")
    assert re.fullmatch(r"[0-9a-f]{16}", span_id or ""), span_id
    worker_line.get_by_role("button").click()
    highlighted = waterfall.locator("tr.highlighted")
    expect(highlighted).to_have_count(1)
    expect(highlighted).to_have_attribute("data-span-id", span_id)
    expect(highlighted).to_have_attribute("data-service", "worker")
    expect(worker_line).to_have_class(re.compile(r"\bpicked\b"))

    # A span's attributes on click; a span's children fold away and come back.
    email.locator(".span-name").click()
    attributes = page.get_by_label("Attributes of send_email")
    expect(attributes).to_contain_text(email.get_attribute("data-span-id"))
    expect(attributes.locator("dt", has_text="email.to_domain")).to_have_count(1)
    expect(attributes.locator("dt", has_text="email.to_domain").locator("+ dd")).to_have_text(
        "example.com")
    fold = waterfall.locator('tr[data-operation="buy_record"] .toggle')
    fold.click()
    expect(email).to_have_count(0)
    expect(fold).to_have_attribute("aria-expanded", "false")
    fold.click()
    expect(email).to_be_visible()


def the_slowest_checkout_opens_its_trace(lab, page: Page, trace_id: str) -> None:
    """The footer's link: the slowest checkout exemplar of the last 15 min, and its trace."""
    prometheus = Prometheus(lab.url("PROMETHEUS_PORT"))

    def exemplar_traces() -> set[str]:
        now = time.time()
        return {e["labels"].get("trace_id")
                for e in prometheus.exemplars(CHECKOUT_HISTOGRAM, now - 900, now)}

    # This purchase's checkout makes one, but the parallel tests' checkouts may take its
    # bucket's place before Prometheus scrapes it: any checkout exemplar will do.
    wait_for(exemplar_traces, 30, f"a checkout exemplar (this purchase's trace: {trace_id})")
    page.get_by_role("link", name="The slowest checkout in the last 15 min").first.click()
    shown = page.locator("#slowest-trace-id")
    expect(shown).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    assert shown.inner_text() in exemplar_traces()
    # In ms, or in s for one over a second (a checkout of another test may have been).
    expect(page.locator("#slowest-duration")).to_have_text(re.compile(r"^\d+\.\d+ m?s$"))
    expect(page.locator('.waterfall tr[data-operation="POST /checkout"]').first).to_be_visible(
        timeout=30_000)


def test_the_store_works_by_keyboard(lab, page):
    open_store(page, lab)
    expect(page.locator(".card-link").first).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search title or artist")).to_be_focused()
    page.keyboard.type("miles")
    page.keyboard.press("Enter")
    expect(page.locator(".result-count")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("miles")

    page.locator(".card-link").first.focus()
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_be_focused()  # focus follows the view, for screen readers too
    page.get_by_label("E-mail for the receipt").focus()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Quantity")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Credit card")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("PayPal")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Buy now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(ORDER_URL)
    expect(page.get_by_role("status").filter(has_text="Status")).to_be_visible()


@pytest.mark.disruptive
def test_with_the_api_down_the_store_explains_with_the_correlation_id(lab, page):
    lab_command(lab, "stop", "api")
    try:
        with page.expect_response(lambda r: "/products" in r.url) as answer:
            open_store(page, lab)
        assert answer.value.status == 502
        gateway_cid = answer.value.headers["x-correlation-id"]
        assert answer.value.json()["correlation_id"] == gateway_cid

        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("The checkout API is not answering")
        expect(alert.locator(".error-correlation-id")).to_have_text(gateway_cid)
        expect(alert).to_contain_text("502 api_unavailable")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        assert gateway_cid == page.locator("#journey-id").inner_text()
        gateway_log = (lab.logs / "gateway.log").read_text(errors="replace")
        assert any(gateway_cid in line and '"status":502' in line
                   for line in gateway_log.splitlines())
    finally:
        lab_command(lab, "start", "api")
    wait_for(lambda: get_status(lab) == 200, 30, "the API behind the gateway")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator(".card-link").first).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)


@pytest.mark.disruptive
def test_with_the_database_down_the_refused_checkouts_trace_shows_the_error_span(lab, page):
    open_store(page, lab)
    page.locator(".card-link").first.click()
    page.get_by_label("E-mail for the receipt").fill(EMAIL)
    lab_command(lab, "stop", "db")
    try:
        with page.expect_response(lambda r: r.url.endswith("/checkout")) as answer:
            page.get_by_role("button", name="Buy now").click()
        assert answer.value.status == 503
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("503 database_unavailable")
        trace_id = answer.value.headers["x-trace-id"]
        waterfall = alert.locator(".waterfall")
        expect(waterfall).to_contain_text(trace_id, timeout=30_000)
        # Each attempt at a connection is a span of its own: one or more, all in error.
        refused = waterfall.locator(
            'tr.error[data-operation="connect"][data-service="api"]').first
        expect(refused).to_be_visible(timeout=30_000)
        expect(refused.locator(".error-badge")).to_have_text("error")
        expect(waterfall.locator('tr[data-operation="checkout_order"]')).to_be_visible()
    finally:
        lab_command(lab, "start", "db")
    wait_for(lambda: get_status(lab) == 200, 30, "the API's database to be back")


def get_status(lab) -> int:
    try:
        get_json(lab.url("GATEWAY_PORT", "/health"))
    except OSError as exc:
        return getattr(exc, "code", 0)
    return 200
