"""Each exercise fires the alerts exercises/README.md says it teaches, with the fault its README
switches on, and they resolve after its clean-up: 03's flash sale past the worker's capacity,
04's stuck then stopped worker, 08's checkouts waiting on a lock. 04 and 08 run side by side
(one holds the worker, the other the API's checkouts), after 03 (04's orders that waited
minutes would be slow orders of 03's alert). The other exercises' alerts fire elsewhere:
02's in test_alert_delivery.py (DatabaseRecentlyDown resolves only 30 minutes on), 06's and
07's in test_exercises.py, but 06's burn-rate alerts: the first test here burns the budget,
the last finds that CheckoutErrorBudgetBurnSlow fired meanwhile (5 minutes after its windows
passed its threshold, while 03's sale ran).

Each of the three exercises' checks is answered here too, from the signals of its run, right
(it passes) and wrong (it fails with hints that never say the answer): their faults run once.

Afterwards OrderProcessingSlow may fire for a few minutes: 04's stuck orders, confirmed at
last, took minutes from checkout to confirmation. That is the truth, and it resolves alone."""

import re
import statistics
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from sqlalchemy import text

from labctl.config import ROOT
from recordstore.db import session_scope
from tests.exercise_steps import (
    JOURNEY,
    assert_passes,
    assert_wrong_answers_get_hints,
    before,
    busiest_span,
    exemplar_trace_ids,
    firing_began,
    graph_points,
    jaeger_trace,
    logged_duration_ms,
    prometheus_range,
    shopping,
    utc_clock,
)
from tests.helpers import active_alerts, fired_since, get_json, lab_command, wait_for

# Alone: minutes of faults held until alerts fire, on a stack no other test uses (the suite
# runs it beside the disruptive phase).
pytestmark = [pytest.mark.stack, pytest.mark.disruptive, pytest.mark.alone,
              pytest.mark.timeout(1200)]
INDEX = ROOT / "exercises" / "README.md"


def taught() -> dict[str, set[str]]:
    """exercises/README.md's table: the alerts each exercise teaches, by its number."""
    rows = re.findall(r"^\| (\d\d) \|.*\| ([^|]*) \|$", INDEX.read_text(), re.M)
    return {number: set(re.findall(r"`(\w+)`", alerts)) for number, alerts in rows}


def test_the_table_names_the_alerts_of_the_exercises_this_test_runs():
    alerts = taught()
    assert alerts["03"] == {"OrderProcessingSlow"}
    assert alerts["04"] == {"WorkerDown", "QueueBacklogGrowing"}
    assert alerts["08"] == {"SlowCheckout"}


def value(lab, query: str) -> float:
    result = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?query={quote(query)}"))
    result = result["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def quiet(lab, names: set[str], timeout_s: float, what: str) -> None:
    """Wait until none of `names` is pending or firing."""
    wait_for(lambda: not names & set(active_alerts(lab)), timeout_s,
             lambda: f"{what}: {sorted(names)} quiet (active: {active_alerts(lab)})", interval_s=2)


SEEN_FIRING: dict[str, float] = {}  # when the test first saw each alert firing (polls 2 s apart)


def fire(lab, names: set[str], fired: set[str], timeout_s: float,
         unless: set[str] = frozenset()) -> None:
    """Wait until every one of `names` fires (while none of `unless` is active); note them,
    and when each was first seen firing."""
    def all_fire() -> bool:
        now = active_alerts(lab)
        assert not unless & set(now), f"{sorted(unless & set(now))} active: {now}"
        for name in names:
            if now.get(name) == "firing":
                SEEN_FIRING.setdefault(name, time.time())
        return all(now.get(name) == "firing" for name in names)

    wait_for(all_fire, timeout_s, lambda: f"{sorted(names)} firing (active: {active_alerts(lab)})",
             interval_s=2)
    fired |= names


def worker_slots(lab) -> int:
    return int(lab.env.get("WORKER_PROCESSES", "2")) * int(lab.env.get("WORKER_CONCURRENCY", "8"))


def queue_empty(lab) -> bool:
    return value(lab, 'sum(rabbitmq_queue_messages_ready{job="rabbitmq",queue=~"orders|emails"})'
                      ' + sum(rabbitmq_queue_messages_unacked{job="rabbitmq",'
                      'queue=~"orders|emails"})') == 0


def tasks_in_flight(lab) -> float:
    """process_order runs started and not ended, as the worker's own counters say."""
    started = value(lab, 'sum(recordstore_celery_tasks_started_total{job="worker",'
                         'task="process_order"})')
    ended = value(lab, 'sum(recordstore_celery_tasks_total{job="worker",task="process_order"})')
    return started - ended


def held_while_waiting(lab, since: float) -> float:
    """The median of the messages the worker held (both queues) while orders waited, ready."""
    def points(expr: str) -> dict[float, float]:
        return {t: float(v) for s in prometheus_range(lab, expr, since) for t, v in s["values"]}
    ready = points('sum(rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"})')
    held = points('sum(rabbitmq_queue_messages_unacked{job="rabbitmq",queue=~"orders|emails"})')
    return statistics.median(held[t] for t, n in ready.items() if n >= 1 and t in held)


def answer_03(lab, since: float) -> None:
    """03's check, answered as the README's steps read the run: the knee, the rate of
    confirmed orders where the most orders waited (near the worker's threads over the 7 s an
    order holds one, unless a busy machine slowed it), the worker's threads, and when the
    alert went firing as the test saw it on Prometheus's Alerts page (polled every 2 s)."""
    def points(expr: str) -> dict[float, float]:
        return {t: float(v) for s in prometheus_range(lab, expr, since) for t, v in s["values"]
                if v != "NaN"}
    ready = points('sum(rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"})')
    confirmed = points('sum(rate(recordstore_orders_completed_total{job="worker",'
                       'status="confirmed"}[30s]))')
    peak = max(ready.values())
    knee = statistics.median(confirmed[t] for t, n in ready.items() if n == peak and t in confirmed)
    assert 0.5 < knee / (worker_slots(lab) / 7) < 1.5, knee
    answers = {"knee_per_s": round(knee, 2), "saturated": "the worker's threads",
               "fired_at": utc_clock(SEEN_FIRING["OrderProcessingSlow"] - 1)}
    assert_wrong_answers_get_hints(lab, "03", since, {}, {
        "knee_per_s": 99, "saturated": "the worker's CPU", "fired_at": "25:61"})
    # Its last step: OrderProcessingSlow resolved, about 2 minutes after the last slow order.
    assert_passes(lab, "03", since, wait_s=300, answers=answers)


def answer_04_and_08(lab, since: float) -> None:
    """04's and 08's checks, answered from the run's graphs, its slowest checkout's exemplar,
    that trace, and the API's log line of that request."""
    began = firing_began(lab, since)
    first = min(began, key=began.get)
    queue = 'rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"}'
    answers = {"first_alert": first, "first_fired_at": utc_clock(began[first]),
               "ready_peak": max(graph_points(lab, queue, since))}
    assert_wrong_answers_get_hints(lab, "04", since, {}, {
        "first_alert": "BrokerDown", "first_fired_at": "25:61", "ready_peak": 9999})
    assert_passes(lab, "04", since, answers=answers)
    slow = exemplar_trace_ids(lab, since, "/checkout", 0.5)[0]
    statement, _ = busiest_span(jaeger_trace(lab, slow), "kodekloud-record-store-api")
    answers = {"slow_trace_id": slow, "statement": statement,
               "request_ms": logged_duration_ms(lab, slow),
               "fired_at": utc_clock(began["SlowCheckout"])}
    assert_wrong_answers_get_hints(lab, "08", since, {"slow_trace_id": slow}, {
        "statement": "SELECT 1", "request_ms": 1, "fired_at": "25:61"})
    assert_passes(lab, "08", since, answers=answers)


BURN: dict[str, float] = {}  # when 06's burn began: the first test here, read by the last


def test_06_an_exhausted_pool_burns_the_error_budget_fast(lab, chaos):
    """First: 06's exhausted pool fires the fast burn-rate alert while checkouts fail. The slow
    one fires 5 minutes after its 30 m and 6 h windows pass six times the budget, with the fault
    off; the windows keep the failures for 30 minutes, so it fires while 03's sale runs (a
    warning no check here asks about), and the last test reads it. test_exercises.py proves
    06's other alerts."""
    burns = {"CheckoutErrorBudgetBurnFast", "CheckoutErrorBudgetBurnSlow"}
    assert burns <= taught()["06"]
    quiet(lab, burns, 60, "before 06's burn")
    BURN["since"] = time.time()
    chaos("db_pool_exhaustion=1")
    try:
        with shopping(lab, every_s=0.2):  # checkouts answer 503 database_busy
            fire(lab, {"CheckoutErrorBudgetBurnFast"}, set(), 240)
    finally:
        lab_command(lab, "chaos", "reset")
    assert value(lab, "slo:checkout_error_ratio:rate30m") > 6 * 0.001


def test_03_04_08_fire_the_alerts_they_teach_and_resolve_after_the_clean_up(lab, chaos):
    alerts, fired = taught(), {"03": set(), "04": set(), "08": set()}

    # 03: a flash sale past the worker's capacity. The learner's payment gateway takes 5 s and
    # the e-mail 2 s; the test stack's e-mail takes EMAIL_DELAY_MS, so the payment takes the rest
    # of the same 7 s an order holds a worker thread: 16 threads, about 2.3 orders a second.
    quiet(lab, alerts["03"], 240, "before 03")
    since_03, _ = before(lab, "03")
    chaos(f"payment_latency_ms={7000 - int(lab.env.get('EMAIL_DELAY_MS', '0'))}")
    sale = subprocess.Popen(
        [sys.executable, "-I", "-S", str(JOURNEY), "load-test", "--base-url",
         lab.url("GATEWAY_PORT"), "--pattern", "flash-sale", "--duration", "120",
         "--users", "20", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd=ROOT)
    try:
        fire(lab, alerts["03"], fired["03"], 300)
        # The saturated resource, as the signals show it: every worker thread held (RabbitMQ's
        # unacknowledged messages: the prefetch of each thread) while orders wait, ready. The
        # two queues are counted at slightly different moments (a thread passing from an
        # order to its e-mail may be counted in both: a run saw 19 of 16): their median.
        held = held_while_waiting(lab, since_03)
        assert abs(held - worker_slots(lab)) <= 1, held
        assert value(lab, 'max_over_time(sum(rabbitmq_queue_messages_ready{job="rabbitmq",'
                          'queue="orders"})[5m:5s])') > 5
        report = sale.communicate(timeout=240)[0]
    finally:
        sale.kill()
        sale.wait()
        lab_command(lab, "chaos", "reset")
    assert re.search(r"order processing p95 < 10 s .* MISSED", report), report
    wait_for(lambda: queue_empty(lab), 120, "03's backlog to drain", interval_s=2)
    answer_03(lab, since_03)

    # 04 and 08 side by side: a payment gateway that never answers holds every worker thread;
    # a stock count's row locks hold every checkout. A shopper buys every second or so, spread
    # over the records in stock so none runs out.
    b_alerts = alerts["04"] | alerts["08"]
    quiet(lab, b_alerts, 240, "before 04 and 08")
    since_b, _ = before(lab, "04", "08")

    def settled() -> bool:
        # 08's check, run by before(), buys a record: its order takes its stock before the
        # count below, or the count finds one record too few (CI did).
        with session_scope() as s:
            return s.scalar(text("SELECT count(*) FROM orders "
                                 "WHERE status NOT IN ('confirmed', 'failed')")) == 0

    wait_for(settled, 60, "every earlier order final before the stock is counted")
    with session_scope() as s:
        since = s.scalar(text("SELECT now()"))
        products = list(s.scalars(text("SELECT id FROM products WHERE stock >= 5 ORDER BY id")))
        stock_before = dict(s.execute(text("SELECT id, stock FROM products")).all())
    assert len(products) >= 40, products
    in_flight_before = tasks_in_flight(lab)
    chaos("payment_gateway_hang=1", "stock_lock_ms=1500")
    try:
        with shopping(lab, every_s=1, product_ids=products):
            fire(lab, (alerts["04"] - {"WorkerDown"}), fired["04"], 300, unless={"WorkerDown"})
            fire(lab, alerts["08"], fired["08"], 120, unless={"WorkerDown"})
            # Stuck, not down: every thread holds a task that started and never ended.
            assert value(lab, 'sum(rabbitmq_queue_messages_unacked{job="rabbitmq",'
                              'queue="orders"})') == worker_slots(lab)
            assert tasks_in_flight(lab) - in_flight_before == worker_slots(lab)
            # No order completes while the worker is stuck: 03's alert resolves meanwhile.
            quiet(lab, alerts["03"], 180, "03's alert after its clean-up")
            lab_command(lab, "stop", "worker")  # its tasks never end: killed after a grace
            fire(lab, {"WorkerDown"}, fired["04"], 90)
            # The cause pages, not its symptom: Alertmanager holds QueueBacklogGrowing back.
            wait_for(lambda: any(
                a["labels"]["alertname"] == "QueueBacklogGrowing" and a["status"]["inhibitedBy"]
                for a in get_json(lab.url("ALERTMANAGER_PORT", "/api/v2/alerts"))), 30,
                "Alertmanager to inhibit QueueBacklogGrowing")
    finally:
        lab_command(lab, "chaos", "reset")
        lab_command(lab, "start", "worker")
    quiet(lab, b_alerts, 240, "04 and 08 after their clean-up")
    for exercise in ("03", "04", "08"):
        assert fired[exercise] >= alerts[exercise], (exercise, fired[exercise])

    # Held, killed and redelivered: every order completes once, charged once, stock exact.
    def final() -> list | None:
        with session_scope() as s:
            rows = s.execute(text("SELECT id, status FROM orders WHERE created_at >= :t"),
                             {"t": since}).all()
        return rows if rows and all(r.status == "confirmed" for r in rows) else None

    orders = wait_for(final, 120, "every order of 04 confirmed")
    with session_scope() as s:
        ids = [r.id for r in orders]
        charged = s.execute(text("SELECT order_id, count(*) FROM payments "
                                 "WHERE order_id = ANY(:ids) GROUP BY order_id"),
                            {"ids": ids}).all()
        sold = dict(s.execute(text("SELECT product_id, sum(quantity) FROM order_items WHERE "
                                   "order_id = ANY(:ids) GROUP BY product_id"), {"ids": ids}).all())
        stock_after = dict(s.execute(text("SELECT id, stock FROM products")).all())
    assert sorted(charged) == sorted((i, 1) for i in ids)
    assert {p: stock_before[p] - stock_after[p] for p in sold} == sold
    assert all(stock_before[p] == stock_after[p] for p in stock_before if p not in sold)
    answer_04_and_08(lab, since_b)  # last: 08's check buys a record to see checkouts fast


def test_06_the_burnt_budget_fired_the_slow_burn_alert_too(lab):
    """Last: the failures of the first test, still in the 30 m and 6 h windows, fired
    CheckoutErrorBudgetBurnSlow (its 5 minutes passed while 03, 04 and 08 ran)."""
    if "since" not in BURN:
        pytest.fail("runs after test_06_an_exhausted_pool_burns_the_error_budget_fast")
    wait_for(lambda: "CheckoutErrorBudgetBurnSlow" in fired_since(lab, BURN["since"]), 360,
             lambda: f"CheckoutErrorBudgetBurnSlow fired (active: {active_alerts(lab)})",
             interval_s=5)
