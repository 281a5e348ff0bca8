"""The floors the checkout is measured against, in the same run: the checkout's own SQL alone
(pgbench, the same statements against the lab's PostgreSQL, no Python in the way), and an
empty route through the same gateway and uvicorn processes (bench.measure sweeps it)."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.stack import Stack, cpu_by_component
from labctl.components import BY_NAME
from labctl.config import ROOT
from labctl.proc import LabError

EMPTY_ROUTE = "/health/live"  # api/routes/health.py: no work, no dependency
PGBENCH_TAG = "bench-pgbench"  # the correlation id of pgbench's orders, deleted afterwards
PGBENCH_CLIENTS = 4


def _pgbench_sql(statement: str, values: dict[str, str]) -> str:
    """The checkout's statement with pgbench's variables (`:name`) and constants in place of
    SQLAlchemy's bind parameters, on one line (pgbench reads one command per line)."""
    sql = re.sub(r":(\w+)", lambda m: values[m.group(1)], statement)
    return " ".join(sql.split()) + ";"


def pgbench_script(first_id: int, last_id: int) -> str:
    """One transaction as the checkout makes it: the product, the customer, the order and
    its item, the commit. The order is marked as handed to the broker, so that no outbox
    relay publishes it. In the lab's venv (`python -m bench.floors`): the statements are the
    checkout's own, and ./lab itself runs on the standard library only."""
    from recordstore.checkout import CUSTOMER_ID, NEW_ORDER

    values = {"email": "'guest@recordstore.example'", "customer_id": "(SELECT 1)",
              "status": "'pending'", "payment_method": "'credit_card'",
              "total_cents": "1999", "correlation_id": f"'{PGBENCH_TAG}'",
              "trace_id": "NULL", "traceparent": "NULL", "product_id": ":product",
              "quantity": "1", "unit_price_cents": "1999"}
    new_order = NEW_ORDER.text.replace("trace_id, traceparent)", "trace_id, traceparent, "
                                       "enqueued_at)").replace(":traceparent)",
                                                               ":traceparent, now())")
    customer = _pgbench_sql(CUSTOMER_ID.text, values).rstrip(";") + " \\gset customer_"
    values["customer_id"] = ":customer_id"
    return "\n".join([
        f"\\set product random({first_id}, {last_id})",
        "BEGIN;",
        "SELECT id, title, genre, price_cents, stock FROM products WHERE id = :product;",
        customer,
        _pgbench_sql(new_order, values),
        "END;",
        "",
    ])


def _run_pgbench(stack: Stack, script: Path, duration_s: float, rate: float | None) -> dict:
    env = stack.base.env
    argv = [str(BY_NAME["db"].bindir() / "pgbench"), "-n", "-f", str(script),
            "-c", str(PGBENCH_CLIENTS), "-j", "2", "-T", str(max(1, round(duration_s))),
            "-h", "127.0.0.1", "-p", env["POSTGRES_PORT"], "-U", env["POSTGRES_USER"],
            env["POSTGRES_DB"]]
    if rate:
        argv[2:2] = ["-R", f"{rate:g}"]
    before = stack.processes()
    r = subprocess.run(argv, env={**os.environ, "PGPASSWORD": env["POSTGRES_PASSWORD"]},
                       capture_output=True, text=True, timeout=duration_s + 60)
    after = stack.processes()
    if r.returncode != 0:
        raise LabError(f"pgbench failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    db_cpu_s = cpu_by_component(before, after).get("db", 0.0)

    def figure(pattern: str) -> float | None:
        m = re.search(pattern, r.stdout)
        return float(m.group(1)) if m else None

    done = figure(r"number of transactions actually processed: (\d+)") or 0
    return {"rate": rate, "transactions": int(done), "tps": figure(r"tps = ([\d.]+)"),
            "latency_avg_ms": figure(r"latency average = ([\d.]+) ms"),
            "latency_stddev_ms": figure(r"latency stddev = ([\d.]+) ms"),
            "db_cpu_ms_per_transaction": round(1000 * db_cpu_s / done, 3) if done else None}


def pgbench_floor(stack: Stack, rate: float, duration_s: float) -> dict:
    """The checkout's SQL alone: at the target rate (PostgreSQL's CPU per checkout), then as
    fast as PGBENCH_CLIENTS connections go (its capacity)."""
    first, last = (int(x) for x in stack.sql(
        "SELECT min(id) || ' ' || max(id) FROM products").split())
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "checkout.sql"
        r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "bench.floors",
                            str(first), str(last)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise LabError(f"python -m bench.floors failed:\n{r.stderr[-2000:]}")
        script.write_text(r.stdout)
        try:
            at_rate = _run_pgbench(stack, script, duration_s, rate)
            unthrottled = _run_pgbench(stack, script, duration_s, None)
        finally:
            stack.sql(f"DELETE FROM orders WHERE correlation_id = '{PGBENCH_TAG}'")
    return {"statements": 3, "clients": PGBENCH_CLIENTS, "at_rate": at_rate,
            "capacity_tps": unthrottled["tps"], "unthrottled": unthrottled}


if __name__ == "__main__":
    print(pgbench_script(int(sys.argv[1]), int(sys.argv[2])), end="")
