"""The API's HTTP metrics. Request counts come from prometheus-fastapi-instrumentator; the
latency histogram is our own so that each observation carries its trace id as an exemplar
(a latency spike in Grafana links to the trace that caused it).

The API may run as several processes (API_WORKERS, uvicorn --workers) behind one port. Then
every process writes its series to PROMETHEUS_MULTIPROC_DIR and whichever process answers a
scrape reports the sum of them all. prometheus_client keeps no exemplars in that mode (its
multiprocess values leave them as a TODO), so the processes share them through that
directory too: see SharedExemplars."""

import json
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from api.cpu import ApiCpuCollector
from recordstore import chaos
from recordstore import metrics as business
from recordstore.open_orders import OpenOrdersCollector

LATENCY_NAME = "http_request_duration_seconds"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)
# By status class (2xx, 4xx, 5xx) too: a latency SLO times the answers a user waited for
# (SlowCheckout: accepted checkouts), which an outage's fast 503s would otherwise drag down.
LATENCY = Histogram(
    LATENCY_NAME,
    "Latency of HTTP requests, by handler, method and status class (exemplars: trace_id).",
    ["handler", "method", "status_class"],
    buckets=BUCKETS,
)


class SharedExemplars:
    """The latest exemplar of every latency bucket, shared by the API's processes.

    Each process keeps, per (handler, method, status class, bucket), the trace id of the last
    request it observed there, and writes them to a file of its own in the multiprocess directory at
    most every FLUSH_S seconds (from a thread, not on the request path). A scrape, in
    whichever process answers it, attaches to each bucket the newest exemplar among all the
    files, as one process's prometheus_client would have done."""

    FLUSH_S = 0.5
    PREFIX = "exemplars_"

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self._path = directory / f"{self.PREFIX}{pid or os.getpid()}.json"
        # "handler|method|status_class|le" -> [trace_id, value, time]
        self._latest: dict[str, list] = {}
        self._lock = threading.Lock()  # the exemplars
        self._write_lock = threading.Lock()  # the file
        self._dirty = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def key(handler: str, method: str, status_class: str, le: str) -> str:
        return f"{handler}|{method}|{status_class}|{le}"

    @staticmethod
    def bucket(value: float) -> str:
        """The `le` of the bucket an observation falls in, spelled as the exposition does."""
        i = bisect_left(BUCKETS, value)
        return floatToGoString(BUCKETS[i]) if i < len(BUCKETS) else "+Inf"

    def record(self, handler: str, method: str, status_class: str, value: float,
               trace_id: str) -> None:
        with self._lock:
            self._latest[self.key(handler, method, status_class, self.bucket(value))] = [
                trace_id, value, time.time()]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="exemplars", daemon=True)
                self._thread.start()
        self._dirty.set()

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                body = json.dumps(self._latest)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(body)
            os.replace(tmp, self._path)  # a reader sees the old file or the new one, never half

    def _loop(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            with suppress(OSError):  # the directory was wiped under a stopping lab
                self.flush()
            time.sleep(self.FLUSH_S)  # a rate limit on writes, not a wait for anything

    def newest(self) -> dict[str, list]:
        found: dict[str, list] = {}
        for path in self.directory.glob(f"{self.PREFIX}*.json"):
            try:
                entries = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a process's file being replaced, or gone with it
            for key, entry in entries.items():
                if key not in found or entry[2] > found[key][2]:
                    found[key] = entry
        return found

    def attach(self, families: Iterable[Metric]) -> Iterator[Metric]:
        """The families, with the newest exemplars on the latency histogram's buckets."""
        exemplars = None
        for family in families:
            if family.name == LATENCY_NAME:
                exemplars = self.newest() if exemplars is None else exemplars
                family.samples = [self._with_exemplar(s, exemplars) for s in family.samples]
            yield family

    def _with_exemplar(self, sample: Sample, exemplars: dict[str, list]) -> Sample:
        if not sample.name.endswith("_bucket"):
            return sample
        labels = sample.labels
        entry = exemplars.get(self.key(labels.get("handler", ""), labels.get("method", ""),
                                       labels.get("status_class", ""), labels.get("le", "")))
        if entry is None:
            return sample
        trace_id, value, at = entry
        return sample._replace(exemplar=Exemplar({"trace_id": trace_id}, value, at))


class _FaultGated:
    """A source's families, but those of a fault that is off (metrics.FAULT_GATED): their
    series leave the scrape, and Prometheus marks them stale."""

    def __init__(self, source) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            fault = business.FAULT_GATED.get(family.name)
            if fault is None or chaos.on(fault):
                yield family


class _MultiProcessWithExemplars:
    def __init__(self, directory: Path) -> None:
        self._collector = multiprocess.MultiProcessCollector(None, str(directory))
        self._exemplars = SharedExemplars(directory)

    def collect(self) -> Iterator[Metric]:
        return self._exemplars.attach(self._collector.collect())


def multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def status_class(status_code: int) -> str:
    return f"{status_code // 100}xx"


def _latency_observer(shared: SharedExemplars | None):
    def observe(info: metrics.Info) -> None:
        response = info.response
        trace_id = response.headers.get("x-trace-id") if response is not None else None
        # No response: the app raised, and the client got a 500.
        klass = status_class(response.status_code if response is not None else 500)
        LATENCY.labels(info.modified_handler, info.method, klass).observe(
            info.modified_duration, exemplar={"trace_id": trace_id} if trace_id else None
        )
        if shared is not None and trace_id:
            shared.record(info.modified_handler, info.method, klass, info.modified_duration,
                          trace_id)
    return observe


def instrument(app: FastAPI, enabled: bool = True, order_final_within_s: float = 300) -> None:
    """Count and time every request. Disabled (METRICS_ENABLED=false, to measure what metrics
    cost), requests pass uninstrumented, the business counters record nothing, and /metrics
    answers empty, so health checks still pass."""
    directory = multiprocess_dir()
    business.set_enabled(enabled)
    if enabled:
        business.initialise_api_series()
        shared = SharedExemplars(directory) if directory is not None else None
        Instrumentator(
            should_group_status_codes=False, excluded_handlers=["/metrics"],
        ).add(metrics.requests()).add(_latency_observer(shared)).instrument(app)
    registry = CollectorRegistry()
    if enabled:
        registry.register(_FaultGated(REGISTRY if directory is None
                                      else _MultiProcessWithExemplars(directory)))
    if enabled:
        registry.register(OpenOrdersCollector(order_final_within_s))
        registry.register(ApiCpuCollector())

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        # Exemplars exist only in the OpenMetrics format, which Prometheus asks for.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)
