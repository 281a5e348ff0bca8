"""Acceptance: after a short load through the gateway, every Prometheus panel of every
provisioned dashboard returns data from the lab's live Prometheus, and `./lab dashboard
"Purchase Journey"` shows each of that dashboard's panels with a value."""

import re
import subprocess

import pytest

from labctl import grafana_json
from labctl.config import ROOT
from labkit.prometheus import Prometheus
from tests.helpers import wait_for, wait_for_order

# One worker runs the whole module, so the load below is generated once.
pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("dashboards")]

PAYMENT_METHODS = ("credit_card", "paypal", "apple_pay", "gift_card")
QUERIES = [(board["title"], title, ref, expr)
           for board in grafana_json.load_all() for title, ref, expr in grafana_json.queries(board)]
# A value as ./lab dashboard prints it: a number with its unit, a mapped state, or NaN.
VALUE = re.compile(r"\s(-?\$?[\d,]+(\.\d+)?( %| ms| s| req/s| ops/s)?|NaN|UP|DOWN)$")


@pytest.fixture(scope="module")
def journey(gateway):
    """Browsing, a purchase with each payment method, a 404 and a 409, orders confirmed."""
    products = gateway.get("/products", params={"page_size": 100}).json()["items"]
    sold_out = next(p["id"] for p in products if p["stock"] == 0)
    in_stock = [p["id"] for p in products if p["stock"] > 10]
    assert gateway.get("/products", params={"genre": "Jazz"}).status_code == 200
    assert gateway.get(f"/products/{in_stock[0]}").status_code == 200
    orders = []
    for product_id, method in zip(in_stock, PAYMENT_METHODS, strict=False):
        answer = gateway.post("/checkout", json={
            "product_id": product_id, "quantity": 1, "payment_method": method,
            "customer_email": "dashboards@example.com"})
        assert answer.status_code == 202, answer.text
        orders.append(answer.json())
    assert gateway.post("/checkout", json={"product_id": 999999}).status_code == 404
    assert gateway.post("/checkout", json={"product_id": sold_out}).status_code == 409
    for order in orders:
        assert wait_for_order(gateway, order["order_id"])["status"] == "confirmed"
    return orders


@pytest.mark.parametrize("board,panel,ref,expr", QUERIES,
                         ids=[f"{b} / {p} / {r}" for b, p, r, _ in QUERIES])
def test_every_prometheus_panel_returns_data(lab, journey, board, panel, ref, expr):
    prometheus = Prometheus(lab.url("PROMETHEUS_PORT"))
    # Scrapes come every 5 s and rate() needs two samples: poll, do not sleep.
    result = wait_for(lambda: prometheus.query(expr), 60,
                      f"{board} / {panel} ({ref}) to return data: {expr}", interval_s=1)
    assert all(len(sample["value"]) == 2 for sample in result)


def panel_blocks(output: str) -> dict[str, list[str]]:
    """Panel title (a line indented by two) -> the lines under it (indented by six)."""
    blocks: dict[str, list[str]] = {}
    title = None
    for line in output.splitlines():
        if re.match(r"^  \S", line):
            title = line.strip()
            blocks[title] = []
        elif line.startswith("      ") and title is not None:
            blocks[title].append(line)
    return blocks


def shows_values(lines: list[str]) -> bool:
    """Every line of a Prometheus panel is a series with a value (no "No data", no ERROR)."""
    without_sparklines = [re.sub(r"[\s▁▂▃▄▅▆▇█]+$", "", line) for line in lines]
    return bool(lines) and all(VALUE.search(line) for line in without_sparklines)


def test_lab_dashboard_shows_every_purchase_journey_panel_with_values(lab, journey):
    board = grafana_json.find("Purchase Journey")
    values = grafana_json.variables(board)
    expected = {grafana_json.substitute(p["title"], values).strip(): grafana_json.is_prometheus(p)
                for _, p in grafana_json.panels(board)}
    last = {"wrong": [], "output": ""}

    def every_panel_shown() -> str | None:
        run = subprocess.run([str(ROOT / "lab"), "dashboard", "Purchase Journey"], env=lab.env,
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert run.returncode == 0, run.stdout + run.stderr
        blocks = panel_blocks(run.stdout)
        last["output"] = run.stdout
        last["wrong"] = [title for title, prometheus in expected.items()
                         if not blocks.get(title)
                         or (prometheus and not shows_values(blocks[title]))]
        return None if last["wrong"] else run.stdout

    try:
        output = wait_for(every_panel_shown, 60, "every panel with a value", interval_s=2)
    except pytest.fail.Exception:
        pytest.fail(f"panels missing or without a value: {last['wrong']}\n{last['output']}")
    assert len(expected) >= 20 and "Jaeger search, natively: curl -s" in output
