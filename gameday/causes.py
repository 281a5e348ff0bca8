"""The causes a game day can pick (games.py): how each is switched on (a component stopped,
or chaos faults), how the lab's own signals show it (`detect`, with the questions of
probes.py), and the signals that show it soonest, for the verdict. Standard library only."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gameday.pipeline import (
    cardinality_bomb,
    exporter_down,
    log_correlation_lost,
    trace_backend_down,
    trace_context_lost,
    traces_sampled_away,
)
from gameday.purchase import buy, health, pg_up
from labkit import http
from labkit.probes import Lab, NotYet
from labkit.rules import FINAL_STATUSES


@dataclass(frozen=True)
class Cause:
    name: str  # what the learner answers
    title: str
    detect: Callable[[Lab], str]  # what the lab's signals show of it; NotYet until they do
    fastest: tuple[str, ...]  # the signals that show it soonest, soonest first
    stop: str = ""  # the component a game stops, or
    faults: dict[str, float] = field(default_factory=dict)  # the chaos faults it switches on
    taught_in: str = ""  # the exercise (its number) that teaches the signals that show it
    sampling: float | None = None  # or the share of traces it keeps (./lab sampling; then 1)

    def shows(self, lab: "Lab") -> str | None:
        """What the lab's signals show of this cause now; None while they show nothing."""
        try:
            return self.detect(lab)
        except (NotYet, http.Unreachable):
            return None


# --- detection: each cause as the lab's signals show it -------------------------------------
def _db_down(lab: Lab) -> str:
    status, down = health(lab)
    if "database" not in down or pg_up(lab) != 0:
        raise NotYet(f"/health answers {status} (down: {down or 'nothing'}), "
                     f"pg_up is {pg_up(lab)}")
    return "/health names the database and PostgreSQL's exporter says pg_up 0"


def _broker_down(lab: Lab) -> str:
    status, down = health(lab)
    if "broker" not in down:
        raise NotYet(f"/health answers {status} (down: {down or 'nothing'})")
    return f"/health answers {status} naming the broker"


def _worker_down(lab: Lab) -> str:
    if lab.value('up{job="worker"}') != 0:
        raise NotYet('Prometheus still scrapes the worker (up{job="worker"} is not 0)')
    return 'Prometheus cannot scrape the worker: up{job="worker"} is 0'


def _worker_stuck(lab: Lab) -> str:
    up = 'up{job="worker"}'
    got = buy(lab, wait_s=8)
    if got.status not in ("pending", "processing") or lab.value(up) != 1:
        raise NotYet(f"a test order is {got.status or got.checkout.error} after "
                     f"{got.waited_s:.0f} s; {up} is {lab.value(up)}")
    return (f"a test order is still {got.status} after {got.waited_s:.0f} s while Prometheus "
            f"scrapes the worker ({up} is 1): it runs, and finishes nothing")


def _slow_queries(lab: Lab) -> str:
    step = lab.shop("gameday").browse()
    if not step.ok or step.latency_ms < 300:
        raise NotYet(f"a catalog page answered {step.status} in {step.latency_ms:.0f} ms")
    return f"a catalog page took {step.latency_ms:.0f} ms"


def _payment_failures(lab: Lab) -> str:
    got = buy(lab)
    if got.order.get("failure_code") != "payment_declined":
        raise NotYet(f"a test order is {got.status or got.checkout.error}, not declined")
    return f"a test order failed: {got.order.get('failure_reason')}"


def _payment_latency(lab: Lab) -> str:
    got = buy(lab, wait_s=15)
    paying = got.step_s("processing", "paid")
    if paying is None or paying < 2:
        raise NotYet(f"a test order is {got.status or got.checkout.error}; payment took "
                     f"{paying if paying is not None else '?'} s")
    return f"a test order spent {paying:.1f} s between processing and paid"


def _email_failures(lab: Lab) -> str:
    got = buy(lab, wait_s=10, until=("paid", *FINAL_STATUSES))
    if got.status != "paid":
        raise NotYet(f"a test order is {got.status or got.checkout.error}, not paid")
    cid = got.checkout.correlation_id
    deadline = time.monotonic() + 10
    while not any("task_retry_scheduled" in line for line in lab.log_lines("worker", cid)):
        if time.monotonic() >= deadline:
            raise NotYet(f"no task_retry_scheduled in the worker's log for {cid}")
        time.sleep(0.5)
    return f"order {got.order.get('order_id')} stays paid; the worker's log retries its e-mail"


def _pool_exhaustion(lab: Lab) -> str:
    step = lab.shop("gameday").checkout(1)
    if (step.status != 503 or "database_busy" not in (step.error or "")
            or step.latency_ms < 1500 or pg_up(lab) != 1):
        raise NotYet(f"a checkout answered {step.status} in {step.latency_ms:.0f} ms, "
                     f"pg_up is {pg_up(lab)}")
    return (f"a checkout waited {step.latency_ms:.0f} ms for a 503 while pg_up is 1: "
            "the database is up, its connections are not free")


def _cpu_hotspot(lab: Lab) -> str:
    step = lab.shop("gameday").checkout(1)
    if step.status != 202 or step.latency_ms < 300:
        raise NotYet(f"a checkout answered {step.status} in {step.latency_ms:.0f} ms")
    return f"a checkout was accepted, in {step.latency_ms:.0f} ms"


CAUSES = (
    Cause("db-down", "PostgreSQL is stopped", _db_down, (
        "/health: 503, down: database, at once; a checkout answers 503 database_unavailable "
        "in milliseconds, its checkout_order span in error",
        "pg_up{job=\"postgres\"} 0 at the next scrape; DatabaseDown fires 10 s later"),
        stop="db", taught_in="02"),
    Cause("broker-down", "RabbitMQ is stopped", _broker_down, (
        "/health: 503, down: broker, at once, while checkouts still answer 202 (the outbox "
        "keeps them) and their orders stay pending",
        "up{job=\"rabbitmq\"} 0 at the next scrape; BrokerDown fires 10 s later"),
        stop="rabbitmq", taught_in="07"),
    Cause("worker-down", "the Celery worker is stopped", _worker_down, (
        "up{job=\"worker\"} 0 at the next scrape (Prometheus' targets page); WorkerDown "
        "fires 15 s later",
        "orders stay pending; rabbitmq_queue_messages_ready{queue=\"orders\"} grows "
        "(QueueBacklogGrowing after a minute)"),
        stop="worker", taught_in="04"),
    Cause("worker-stuck", "the worker is stuck: its payment calls never return", _worker_stuck, (
        "orders stay processing, then pending, while up{job=\"worker\"} is 1 (WorkerDown "
        "stays silent); rabbitmq_queue_messages_unacked{queue=\"orders\"} stops at the "
        "worker's threads",
        "rabbitmq_queue_messages_ready{queue=\"orders\"} grows (QueueBacklogGrowing after a "
        "minute); recordstore_celery_tasks_started_total rises while "
        "recordstore_celery_tasks_total does not; the worker's log: chaos_payment_gateway_hung"),
        faults={"payment_gateway_hang": 1}, taught_in="04"),
    Cause("slow-queries", "the catalog query is slow in PostgreSQL", _slow_queries, (
        "a catalog page takes seconds while checkouts stay fast; /health says the database "
        "is up (past the 5 s statement timeout a page would answer 504 database_timeout)",
        "the catalog request's trace: one SQL span holds the time; "
        "http_request_duration_seconds of GET /products"),
        faults={"slow_query_ms": 800}, taught_in="05"),
    Cause("payment-failures", "the payment gateway declines every payment", _payment_failures, (
        "an order fails with failure_code payment_declined (GET /orders/ID)",
        "the worker's process_order spans in error; "
        "recordstore_orders_completed_total{status=\"failed\",reason=\"payment_declined\"}; "
        "HighOrderFailureRate after a minute"),
        faults={"payment_failure_rate": 1}, taught_in="06"),
    Cause("payment-latency", "the payment gateway answers slowly", _payment_latency, (
        "an order's timestamps: seconds between processing and paid",
        "the worker's trace: authorize_payment holds the time; "
        "recordstore_order_processing_seconds rises (OrderProcessingSlow after a minute)"),
        faults={"payment_latency_ms": 3000}, taught_in="03"),
    Cause("email-failures", "the mail server refuses every e-mail", _email_failures, (
        "orders stop at paid; the worker's log: task_retry_scheduled, then task_dead_lettered",
        "recordstore_celery_tasks_total{task=\"send_order_confirmation\",state=\"retried\"}; "
        "the dead_letter queue; HighJobFailureRate after a minute"),
        faults={"email_failure_rate": 1}, taught_in="06"),
    Cause("pool-exhaustion", "the API's database connections are all held", _pool_exhaustion, (
        "checkouts answer 503 database_busy after a 2 s wait while pg_up is 1 (the database "
        "is up, /health says busy); the API's log: database_busy",
        "HighCheckoutErrorRate after 30 s, CheckoutErrorBudgetBurnFast after a minute"),
        faults={"db_pool_exhaustion": 1}, taught_in="06"),
    Cause("cpu-hotspot", "checkout burns CPU in one function", _cpu_hotspot, (
        "every checkout is accepted, slowly; its trace: checkout_order is long and no child "
        "span explains it",
        "./lab profile api names score_fraud_risk; SlowCheckout after a minute"),
        faults={"cpu_burn_ms": 500}, taught_in="09"),
    # The telemetry itself: the shop works; what breaks is a signal.
    Cause("trace-context-lost", "order messages leave without their trace context",
          trace_context_lost, (
              "a purchase's trace ends at the API's apply_async/process_order span: no worker "
              "span under it",
              "the worker's spans are a trace of their own, found by the purchase's "
              "recordstore.correlation_id; orders still confirm"),
          faults={"trace_context_drop": 1}, taught_in="12"),
    Cause("log-correlation-lost", "the worker's log lines lose the correlation id",
          log_correlation_lost, (
              "./lab logs worker: lines with order_id and trace_id but no correlation_id; "
              "the API's lines keep it",
              "a correlation-id search of the logs finds the API's half of a purchase only"),
          faults={"log_correlation_drop": 1}, taught_in="01"),
    Cause("cardinality-bomb", "a metric is labelled by correlation id", cardinality_bomb, (
        "Prometheus's TSDB status (/api/v1/status/tsdb): recordstore_checkout_journeys_total "
        "and its correlation_id label gain a series with every journey",
        "scrape_samples_scraped{job=\"api\"} and prometheus_tsdb_head_series climb while "
        "the shop works"),
        faults={"cardinality_bomb": 1}, taught_in="11"),
    Cause("traces-sampled-away", "head sampling keeps one trace in fifty", traces_sampled_away, (
        "the trace store holds a trace for about one checkout in fifty while Prometheus counts "
        "every one (recordstore_checkouts_total); most exemplars of /checkout "
        "name traces the store does not know; orders confirm",
        "a checkout's traceresponse header ends in -02 (not sampled); the API's and the "
        "worker's OTEL_TRACES_SAMPLER is parentbased_traceidratio, ratio 0.02 "
        "(./lab sampling)"),
        sampling=0.02, taught_in="13"),
    Cause("trace-backend-down", "the trace store is stopped", trace_backend_down, (
        "Jaeger (or its query API) does not answer; the storefront's order page shows no "
        "waterfall, while checkouts answer 202",
        "the API's log: span export errors; metrics, logs and alerts carry on"),
        stop="jaeger", taught_in="01"),
    Cause("db-exporter-down", "PostgreSQL's exporter is stopped", exporter_down(
        "postgres", "PostgreSQL exporter"), (
        "up{job=\"postgres\"} 0 at the next scrape while /health says the database is up "
        "and checkouts answer 202",
        "pg_up has no sample (absent, not 0): DatabaseDown stays silent, the Dependencies "
        "panel loses its database row"),
        stop="postgres-exporter", taught_in="02"),
    Cause("alertmanager-down", "Alertmanager is stopped", exporter_down(
        "alertmanager", "Alertmanager"), (
        "up{job=\"alertmanager\"} 0 at the next scrape; the shop works",
        "a firing alert reaches no receiver (./lab alerts: nothing delivered; ./lab doctor: "
        "alerts break at their delivery)"),
        stop="alertmanager", taught_in="02"),
)
BY_CAUSE = {c.name: c for c in CAUSES}
