#!/usr/bin/env python3
"""Exercise 14's check: what the learner read off a ramp of load (the highest checkout rate the
shop took within its objectives, the resource that reached its limit first, the peak age of the
oldest order message in the queue); then whether the load stopped and the lab caught up."""

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, between, normal, number, shown_number  # noqa: E402
from labkit.settings import read_env  # noqa: E402

CHECKOUT_SLO_S = 0.5
ORDER_SLO_S = 10.0
# The orders accepted in a 30 s window are confirmed up to ~20 s later (payment, a wait for a
# thread): their end-to-end p95 is read that much later than their rate.
ORDERS_LATER_S = 20
RATE = 'sum(rate(recordstore_checkouts_total{job="api",outcome="accepted"}[30s]))'
CHECKOUT_P95 = ('histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket'
                '{job="api",handler="/checkout",status_class="2xx"}[30s])))')
ORDER_P95 = ('histogram_quantile(0.95, sum by (le) (rate('
             'recordstore_order_end_to_end_seconds_bucket{job="worker"}[30s])))')
CONFIRMED = ('sum(rate(recordstore_orders_completed_total{job="worker",status="confirmed"}'
             '[30s]))')
HELD = 'sum(rabbitmq_queue_messages_unacked{job="rabbitmq",queue=~"orders|emails"})'
# The share of the cores the API's processes can keep busy that they used (api/cpu.py).
API_CPU = ('sum(rate(recordstore_api_cpu_seconds_total{job="api"}[30s])) '
           '/ max(recordstore_api_cpu_limit_cores{job="api"})')
API_CPU_FULL = 0.9  # a scrape's jitter and the kernel's own share keep it from 1
POOL_WAITS = 'sum(increase(recordstore_database_errors_total{job="api",reason="busy"}[30s]))'
LAG = ('time() - rabbitmq_detailed_queue_head_message_timestamp'
       '{job="rabbitmq-queues",queue="orders"}')
PREFETCH_MULTIPLIER = 1  # recordstore/broker.py: worker_prefetch_multiplier
TIE_S = 10  # two limits reached within two scrapes of each other: either came first
RESOURCES = {
    "worker slots": ("worker", "slot", "unack", "prefetch", "concurrency", "thread", "celery",
                     "consumer"),
    "api cpu": ("api", "cpu", "uvicorn", "fastapi"),
    "db pool": ("pool", "connection", "database", "db", "postgres"),
}
WORKER_POOL = ("thread", "worker", "celery")  # "the worker's thread pool" is no database pool


def worker_slots() -> int:
    """Messages the worker may hold at once: processes x threads x prefetch (one a thread)."""
    env = read_env()

    def setting(name: str, default: str) -> int:
        return int(os.environ.get(name) or env.get(name, default))
    return (setting("WORKER_PROCESSES", "2") * setting("WORKER_CONCURRENCY", "8")
            * PREFETCH_MULTIPLIER)


def highest_rate(lab: Lab) -> Truth:
    """The highest accepted-checkout rate (over 30 s) of a moment when both latency objectives
    held: checkout p95 within 500 ms, and the p95 of those orders' end-to-end time (read 20 s
    later) within 10 s. A ramp brackets the limit between that rate and the lowest rate above
    it at which they were missed: right from 25 % below the first up to 15 % above the second
    (0.3 a second at least either side)."""
    rates, checkout, orders = lab.graph(RATE), lab.graph(CHECKOUT_P95), lab.graph(ORDER_P95)
    held, missed = [], []
    for t, rate in rates.items():
        if rate <= 0 or t + ORDERS_LATER_S > max(rates):  # too recent to judge its orders
            continue
        order_p95 = orders.get(t + ORDERS_LATER_S)  # none: no order confirmed, all waited
        if checkout.get(t, 0.0) <= CHECKOUT_SLO_S and order_p95 is not None \
                and order_p95 <= ORDER_SLO_S:
            held.append(rate)
        else:
            missed.append(rate)
    if not missed:
        raise NotYet(f"the objectives held all along since {lab.since_text}: ramp higher, "
                     "past the rate the shop can take")
    if not held:
        raise NotYet("no moment of the window had checkouts within both objectives: ramp "
                     "from lower")
    low = max(held)
    high = min((r for r in missed if r > low), default=low)
    graphs = between(min(low * 0.75, low - 0.3), max(high * 1.15, high + 0.3, low * 1.25),
                     " checkouts/s", shown=f"{shown_number(low)} checkouts/s (missed from "
                     f"{shown_number(high)})")
    # The load test's table reads whole steps, the graphs 30 s windows that straddle them: a
    # step's rate is right too when it lies under what the worker took at most (its
    # capacity: no rate above it keeps the orders' objective for long) by no more than 60 %.
    capacity = max(lab.graph(CONFIRMED).values(), default=0.0)
    steps = between(capacity * 0.4, capacity * 1.3, " checkouts/s")
    return Truth(graphs.shown, lambda answer: graphs.accepts(answer) or steps.accepts(answer),
                 "25 % under the highest rate inside the objectives to 15 % over the lowest "
                 "rate past them, or 60 % under to 30 % over the most orders the worker "
                 "confirmed a second")


def limits_reached(lab: Lab) -> dict[str, float]:
    """When each resource first reached its limit in the window: the worker's slots (every
    message it may hold held), the API's CPU (its processes kept busy nine tenths of the cores
    they can use), the database pool (a checkout found no connection free in time)."""
    if "limits" not in lab.memo:
        slots = worker_slots()
        readings = {"worker slots": (HELD, lambda v: v >= slots),
                    "api cpu": (API_CPU, lambda v: v >= API_CPU_FULL),
                    "db pool": (POOL_WAITS, lambda v: v > 0)}
        reached = {}
        for name, (expr, full) in readings.items():
            at = [t for t, v in lab.graph(expr).items() if full(v)]
            if at:
                reached[name] = min(at)
        lab.memo["limits"] = reached
    return lab.memo["limits"]


def saturated_first(lab: Lab) -> Truth:
    reached = limits_reached(lab)
    if not reached:
        raise NotYet(f"no resource reached its limit since {lab.since_text} (the worker's "
                     f"{worker_slots()} slots, the API's CPU, the database pool)")
    first = min(reached.values())
    names = sorted(n for n, t in reached.items() if t <= first + TIE_S)

    def accepts(answer: str) -> bool:
        told = named(answer)
        return bool(told) and set(told) <= set(names)
    return Truth(" or ".join(names), accepts)


def named(answer: str) -> list[str]:
    """The resources an answer names (a word of it begins with one of theirs)."""
    words = re.findall(r"[a-z]+", normal(answer))
    if any(w.startswith(s) for w in words for s in WORKER_POOL):
        words = [w for w in words if w != "pool"]
    return [n for n, starts in RESOURCES.items()
            if any(w.startswith(s) for w in words for s in starts)]


def not_first(lab: Lab, answer: str) -> str | None:
    told = named(answer)
    if not told:
        return "name a resource: the worker's slots, the API's CPU or the database pool"
    if not set(told) & set(limits_reached(lab)):
        return (f"{' and '.join(told)}: never at its limit in the window; look at each "
                "resource against its limit over the ramp")
    return None


def peak_lag(lab: Lab) -> Truth:
    """The highest age of the oldest message of the orders queue (its lag), at the scrape
    interval. Within ± 25 % (5 s at least)."""
    ages = lab.graph(LAG)
    if not ages:
        raise NotYet("RabbitMQ reported no order message's age in the window (the "
                     "rabbitmq-queues scrape job, or an empty queue all along)")
    return number(max(ages.values()), 5, " s", relative=0.25)


def ramp_ran(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_checkouts_total{{job="api",outcome="accepted"}}'
        f'{lab.window}))', 30, "checkouts accepted")


def load_stopped(lab: Lab) -> str:
    rate = lab.value('sum(rate(recordstore_checkouts_total{job="api"}[1m]))') or 0.0
    if rate >= 0.2:
        raise NotYet(f"checkouts still arrive, {shown_number(rate)} a second over the last "
                     "minute")
    return f"checkouts over the last minute: {shown_number(rate)} a second"


QUESTIONS = [
    Question("highest_rate", "What is the highest checkout rate (accepted, per second) the shop "
             "took within its objectives (checkout p95 < 500 ms, orders' p95 < 10 s)?",
             highest_rate,
             "read the load test's table per step (--ramp): the checkouts/s of the highest step "
             "within the SLO before it was first missed; or graph the README's three queries "
             "of step 4 together"),
    Question("saturated_first", "Which resource reached its limit first?", saturated_first,
             "graph each resource against its limit over the ramp (the README's step 5): the "
             "messages the worker holds against its slots, the API's CPU against the cores it "
             "can use, the database pool's waits; which got there first?",
             wrong=not_first),
    Question("peak_lag_s", "How old, in seconds, did the oldest order message in the queue get "
             "(the queue's lag, at its peak)?", peak_lag,
             "graph time() - rabbitmq_detailed_queue_head_message_timestamp{queue=\"orders\"} "
             "over the ramp and read its highest point"),
]

STEPS = [
    Step("A ramp of load ran through the gateway", ramp_ran,
         "run one: python3 scripts/trace_purchase_journey.py load-test --ramp 120:600:120 "
         "--step 30"),
    Step("The load stopped", load_stopped,
         "wait for the load test to end; stop background shoppers: ./lab traffic stop"),
    Step("The orders queue drained", lambda lab: lab.orders_queue_empty(),
         "wait for the worker to catch up (./lab chaos reset, if the slow gateway is still on)"),
    Step("Every order accepted is final", lambda lab: lab.orders_final(),
         "wait for the worker to catch up"),
]

if __name__ == "__main__":
    main("Exercise 14: capacity and saturation", STEPS, QUESTIONS)
