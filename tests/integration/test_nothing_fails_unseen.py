"""No order fails unseen (issue 24, part 2). A real worker meets an error no retry can mend (a
trigger in PostgreSQL refuses the stock update) and a broker that refuses the confirmation
e-mail's publish: each task ends in the dead-letter queue, never acked and forgotten, and the
order left behind is one that OrdersNotFinal's expression selects once it is overdue."""

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from kombu import Connection
from sqlalchemy import text

from labctl.config import ROOT
from labkit.jaeger import build_tree
from recordstore import correlation
from recordstore.broker import PROCESS_ORDER
from recordstore.config import get_settings
from recordstore.db import get_engine
from tests.helpers import get_json, wait_for
from tests.integration.db import new_order, order, payments, stock

pytestmark = pytest.mark.stack


def dead_letters(app) -> list:
    found = []
    with Connection(get_settings().broker_url) as conn:
        queue = app.recordstore_queues.dead_letter.bind(conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            found.append(message)
    return found


def events(log: Path, cid: str, task: str) -> list[str]:
    """The task's own events (Celery's sentences about the same reject left aside)."""
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if cid in ln]
    return [ln["event"] for ln in lines
            if ln.get("task") == task and re.fullmatch(r"[a-z_]+", ln["event"])]


def alert_expression(name: str) -> str:
    rules = yaml.safe_load((ROOT / "prometheus/rules/alerts.yml").read_text())
    return next(r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == name)


def overdue_alert_selects(lab, order_id: int, state: str) -> bool:
    """OrdersNotFinal's own expression holds in Prometheus, and the gauge it reads counts an
    order in this one's state at least as old as this one."""
    def query(q: str) -> list:
        return get_json(lab.url("PROMETHEUS_PORT", "/api/v1/query?")
                        + httpx.QueryParams(query=q).__str__())["data"]["result"]

    with get_engine().connect() as conn:
        age = conn.scalar(text("SELECT extract(epoch FROM now() - created_at) FROM orders "
                               "WHERE id = :id AND status = :state"),
                          {"id": order_id, "state": state})
    if age is None or age < get_settings().order_final_within_s:
        return False
    oldest = query(f'max(recordstore_oldest_open_order_age_seconds{{job="api",state="{state}"}})')
    return bool(query(alert_expression("OrdersNotFinal"))) and bool(oldest) and float(
        oldest[0]["value"][1]) >= float(age) - 10


@pytest.fixture
def refused_stock_update(lab):
    """A product whose stock update PostgreSQL refuses: a bug no retry can mend."""
    made = []

    def refuse(product_id: int) -> None:
        name = f"t_refuse_{uuid.uuid4().hex[:8]}"
        with get_engine().begin() as conn:
            conn.execute(text(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                              "BEGIN RAISE EXCEPTION 'test: product % refused', NEW.id; END $$"))
            conn.execute(text(f"CREATE TRIGGER {name} BEFORE UPDATE ON products FOR EACH ROW "
                              f"WHEN (OLD.id = {int(product_id)}) EXECUTE FUNCTION {name}()"))
        made.append(name)

    yield refuse
    with get_engine().begin() as conn:
        for name in made:
            conn.execute(text(f"DROP TRIGGER {name} ON products"))
            conn.execute(text(f"DROP FUNCTION {name}()"))


def test_an_error_no_retry_mends_is_dead_lettered_at_once_and_its_order_is_seen(
        lab, private_worker, product, refused_stock_update):
    app, log, _, _ = private_worker(TASK_RETRY_BACKOFF_S="0.1")
    pid = product(stock=5)
    refused_stock_update(pid)
    oid = new_order(pid)
    cid = f"bug-{uuid.uuid4().hex[:8]}"
    app.send_task(PROCESS_ORDER, args=[oid], headers={correlation.TASK_HEADER: cid})

    found = wait_for(lambda: dead_letters(app), 30, "the task in the dead-letter queue")
    assert [m.headers["task"] for m in found] == ["process_order"]
    assert json.loads(found[0].body)[0] == [oid]
    assert events(log, cid, "process_order") == ["task_dead_lettered"]  # no retry of a bug
    dead = next(json.loads(ln) for ln in log.read_text().splitlines()
                if cid in ln and "task_dead_lettered" in ln)
    assert dead["reason"] == "unexpected_error" and "refused" in dead["error"]
    assert order(oid).status == "processing" and stock(pid) == 5
    wait_for(lambda: overdue_alert_selects(lab, oid, "processing"), 60,
             "OrdersNotFinal's expression to select the dead-lettered order")


def test_a_refused_confirmation_publish_is_retried_then_dead_lettered(lab, private_worker,
                                                                      product):
    s = get_settings()
    app, log, _, _ = private_worker(TASK_RETRY_BACKOFF_S="0.1")
    emails = app.recordstore_queues.emails.name
    policy = lab.url("RABBITMQ_MANAGEMENT_PORT", f"/api/policies/%2F/{emails}")
    auth = (s.rabbitmq_user, s.rabbitmq_password)
    # The broker takes no message into the e-mail queue: it nacks the publish.
    httpx.put(policy, auth=auth, timeout=10, json={
        "pattern": f"^{emails}$", "apply-to": "queues",
        "definition": {"max-length": 0, "overflow": "reject-publish"}}).raise_for_status()
    try:
        pid = product(stock=5)
        oid = new_order(pid)
        cid = f"nack-{uuid.uuid4().hex[:8]}"
        app.send_task(PROCESS_ORDER, args=[oid], headers={correlation.TASK_HEADER: cid})
        found = wait_for(lambda: dead_letters(app), 60, "the task in the dead-letter queue")
    finally:
        httpx.delete(policy, auth=auth, timeout=10)
    assert [m.headers["task"] for m in found] == ["process_order"]
    assert events(log, cid, "process_order").count("task_retry_scheduled") == 2
    assert events(log, cid, "process_order")[-1] == "task_dead_lettered"
    # Paid once, stock taken once, whatever the retries; the e-mail was never sent.
    assert order(oid).status == "paid"
    assert len(payments(oid)) == 1 and stock(pid) == 4
    # Its trace tells it whole: each refused publish a producer span in error, nothing hanging
    # under a span never exported (the instrumentation leaves a failed publish's span open).
    def trace_of_it():
        tags = json.dumps({"recordstore.correlation_id": cid})
        found = get_json(lab.url("JAEGER_UI_PORT", "/api/traces?") + str(httpx.QueryParams(
            service="kodekloud-record-store-worker", tags=tags)))["data"]
        trees = [build_tree(t) for t in found]
        spans = [s for tree in trees for s in tree.spans]
        runs = [s for s in spans if s.operation == "run/process_order"]
        return trees if len(runs) == 3 and all(s.end_us for s in runs) else None

    trees = wait_for(trace_of_it, 30, "the order's three attempts in the trace store")
    assert len(trees) == 1 and not trees[0].orphans
    refused = trees[0].find("apply_async/send_order_confirmation")
    assert len(refused) == 3 and all(s.error for s in refused)
    wait_for(lambda: overdue_alert_selects(lab, oid, "paid"), 60,
             "OrdersNotFinal's expression to select the order left paid")
