"""The API's processes share one /metrics: counts summed by prometheus_client's multiprocess
mode, and the latency exemplars (which that mode drops) through SharedExemplars."""

import os
import subprocess
import sys
import textwrap

from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest

from api.metrics import LATENCY_NAME, SharedExemplars
from labctl.config import ROOT


def test_an_observation_lands_in_the_bucket_prometheus_counts_it_in():
    assert SharedExemplars.bucket(0.004) == "0.005"
    assert SharedExemplars.bucket(0.005) == "0.005"  # le: less than or equal
    assert SharedExemplars.bucket(0.0051) == "0.01"
    assert SharedExemplars.bucket(1) == "1.0"
    assert SharedExemplars.bucket(11) == "+Inf"


def test_the_newest_exemplar_of_every_bucket_wins_across_processes(tmp_path):
    first, second = SharedExemplars(tmp_path, pid=1), SharedExemplars(tmp_path, pid=2)
    first.record("/checkout", "POST", "2xx", 0.8, "a" * 32)
    second.record("/checkout", "POST", "2xx", 0.9, "b" * 32)  # same bucket, later
    second.record("/products", "GET", "2xx", 0.003, "c" * 32)
    first.flush()
    second.flush()
    (tmp_path / "exemplars_3.json").write_text("{not json")  # a file being replaced: skipped
    newest = SharedExemplars(tmp_path, pid=9).newest()
    assert newest[SharedExemplars.key("/checkout", "POST", "2xx", "1.0")][0] == "b" * 32
    assert newest[SharedExemplars.key("/products", "GET", "2xx", "0.005")][0] == "c" * 32
    assert len(newest) == 2


def test_exemplars_are_attached_to_their_buckets_in_the_exposition(tmp_path):
    shared = SharedExemplars(tmp_path, pid=1)
    shared.record("/checkout", "POST", "2xx", 0.8, "d" * 32)
    shared.flush()
    family = HistogramMetricFamily(LATENCY_NAME, "latency",
                                   labels=["handler", "method", "status_class"])
    family.add_metric(["/checkout", "POST", "2xx"], [("0.5", 0), ("1.0", 1), ("+Inf", 1)], 0.8)

    class Registry:
        def collect(self):
            return shared.attach([family])

    text = generate_latest(Registry()).decode()
    bucket = next(line for line in text.splitlines() if 'le="1.0"' in line)
    assert f'# {{trace_id="{"d" * 32}"}} 0.8' in bucket
    assert "#" not in next(line for line in text.splitlines() if 'le="0.5"' in line)


def test_two_api_processes_expose_summed_counts_and_each_others_exemplars(tmp_path):
    """Real processes, as uvicorn's workers are: each observes one slow request; the
    exposition either of them would serve holds both counts and both trace ids."""
    observe = textwrap.dedent("""
        import sys
        from api import metrics
        shared = metrics.SharedExemplars(metrics.multiprocess_dir())
        metrics.LATENCY.labels("/checkout", "POST", "2xx").observe(float(sys.argv[1]))
        shared.record("/checkout", "POST", "2xx", float(sys.argv[1]), sys.argv[2])
        shared.flush()
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for seconds, trace_id in (("0.3", "e" * 32), ("3", "f" * 32)):
        subprocess.run([sys.executable, "-c", observe, seconds, trace_id], env=env, cwd=ROOT,
                       check=True, timeout=60)
    expose = textwrap.dedent("""
        from fastapi import FastAPI
        from starlette.requests import Request
        from api import metrics
        app = FastAPI()
        metrics.instrument(app)
        endpoint = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/metrics")
        print(endpoint(Request({"type": "http", "headers": [
            (b"accept", b"application/openmetrics-text")]})).body.decode())
    """)
    text = subprocess.run([sys.executable, "-c", expose], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=60).stdout
    lines = [line for line in text.splitlines()
             if line.startswith(f"{LATENCY_NAME}_") and 'handler="/checkout"' in line]
    assert any(line.startswith(f"{LATENCY_NAME}_count") and line.split()[1] == "2.0"
               for line in lines), lines
    assert any('le="0.5"' in line and "e" * 32 in line for line in lines), lines
    assert any('le="5.0"' in line and "f" * 32 in line for line in lines), lines
