"""What one span costs: the OpenTelemetry Python SDK's own CPU per span, and how many spans a
checkout makes. With them the telemetry cost of a checkout can be read as spans x cost."""

import json
import subprocess
import sys
import time
from collections import Counter

from labctl.config import ROOT
from labctl.proc import LabError, wait_until
from labkit.http import Unreachable
from labkit.jaeger import JaegerError, JaegerQuery, SpanTree, build_tree
from labkit.shop import Shop, new_correlation_id

# The attributes of one of the API's SQL spans, correlation id included.
SQL_SPAN_ATTRIBUTES = {
    "db.system.name": "postgresql", "db.namespace": "recordstore",
    "db.operation.name": "SELECT recordstore",
    "server.address": "127.0.0.1", "server.port": 15432,
    "db.query.text": "SELECT products.id, products.title, products.genre, products.price_cents, "
                     "products.stock FROM products WHERE products.id = %(id_1)s::INTEGER",
    "recordstore.correlation_id": "f309600dcf56761d897efc183a5d2106",
}
EXPORT_BATCH = 512  # the BatchSpanProcessor's default batch


def sdk_span_cost(spans: int = 5000) -> dict:
    """CPU microseconds per span: started, given the SQL span's attributes and ended (the
    processors' share included), and encoded to OTLP protobuf as the exporter does. In the
    lab's venv (`python -m bench.spans`): ./lab itself runs on the standard library only."""
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "bench.spans", str(spans)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise LabError(f"python -m bench.spans failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def _measure(spans: int) -> dict:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    finished = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("bench")
    started = time.process_time()
    for _ in range(spans):
        with tracer.start_as_current_span("SELECT recordstore") as span:
            span.set_attributes(SQL_SPAN_ATTRIBUTES)
    made = time.process_time()
    done = finished.get_finished_spans()
    for i in range(0, len(done), EXPORT_BATCH):
        encode_spans(done[i:i + EXPORT_BATCH]).SerializeToString()
    encoded = time.process_time()
    provider.shutdown()
    return {"spans": spans, "create_end_us": round((made - started) / spans * 1e6, 1),
            "encode_us": round((encoded - made) / spans * 1e6, 1)}


def spans_per_checkout(gateway_url: str, jaeger_url: str, timeout_s: float = 30
                       ) -> dict[str, int] | None:
    """One checkout through the gateway, and its trace's spans per service, once the API's
    spans are in (they are exported in batches, every few seconds)."""
    step = Shop(gateway_url, new_correlation_id("bench")).checkout(1)
    if not step.ok or not step.trace_id:
        return None
    query = JaegerQuery(jaeger_url)
    seen: list[SpanTree] = []

    def api_spans_in() -> bool:
        try:
            raw = query.trace(step.trace_id)
        except (Unreachable, JaegerError):
            return False
        if raw:
            seen[:] = [build_tree(raw)]
        operations = {span.operation for span in seen[0].spans} if seen else set()
        return {"POST /checkout", "enqueue_order"} <= operations

    if not wait_until(api_spans_in, timeout_s, 0.5):
        return None
    return dict(Counter(span.service for span in seen[0].spans))


if __name__ == "__main__":
    print(json.dumps(_measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)))
