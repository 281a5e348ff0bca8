"""The trace stand-in's limits: spans per trace and bytes in all, and connections that nginx
can keep alive (issue 27, part 4)."""

import http.client
import json
import re

from labctl.config import ROOT
from tests.unit.test_tracestore import JSON, _get, _otlp_json, _post
from tracestore import server as tracestore_server
from tracestore.server import serve


def test_one_trace_keeps_at_most_its_cap_of_spans_and_says_so():
    server = serve("127.0.0.1", 0, 0, max_traces=10, max_spans_per_trace=5)
    try:
        trace_id = "a" * 32
        answers = [_post(server.otlp_port, _otlp_json(trace_id, f"{n + 1:016x}", "op"), JSON)
                   for n in range(8)]
        assert [status for status, _, _ in answers] == [200] * 8
        assert json.loads(answers[-1][2]) == {"partialSuccess": {
            "rejectedSpans": "1", "errorMessage": "trace aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
            "holds 5 spans, the most this stand-in keeps of one trace"}}
        _, body = _get(server.query_port, f"/api/traces/{trace_id}")
        assert len(body["data"][0]["spans"]) == 5
        # A span sent again (an exporter's retry) replaces itself even in a full trace.
        assert json.loads(_post(server.otlp_port, _otlp_json(trace_id, f"{1:016x}", "again"),
                                JSON)[2]) == {}
    finally:
        server.close()


def test_the_store_keeps_at_most_its_cap_of_bytes_evicting_the_oldest_traces():
    one = len(_otlp_json("1" * 32, "1" * 16, "x" * 4000))
    server = serve("127.0.0.1", 0, 0, max_traces=1000, max_bytes=3 * one)
    try:
        ids = [f"{n + 1:032x}" for n in range(10)]
        for trace_id in ids:
            body = _otlp_json(trace_id, "1" * 16, "x" * 4000)
            assert _post(server.otlp_port, body, JSON)[0] == 200
        kept = [t for t in ids if _get(server.query_port, f"/api/traces/{t}")[0] == 200]
        assert 1 <= len(kept) <= 3
        assert kept == ids[-len(kept):]
    finally:
        server.close()


def test_a_refused_export_says_it_closes_the_connection_and_a_good_one_keeps_it():
    server = serve("127.0.0.1", 0, 0, max_traces=10)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.otlp_port, timeout=5)
        conn.request("POST", "/v1/traces", body=b"{not json", headers={"Content-Type": JSON})
        refused = conn.getresponse()
        refused.read()
        assert refused.status == 400
        assert refused.getheader("Connection") == "close"
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.otlp_port, timeout=5)
        for n in range(3):
            conn.request("POST", "/v1/traces", body=_otlp_json("b" * 32, f"{n + 1:016x}", "op"),
                         headers={"Content-Type": JSON})
            ok = conn.getresponse()
            ok.read()
            assert ok.status == 200
            assert ok.getheader("Connection") != "close"
        conn.close()
    finally:
        server.close()


def test_nginx_drops_an_idle_connection_to_the_stand_in_before_the_stand_in_does():
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    block = re.search(r"upstream otlp \{(.*?)\n\}", template, re.S).group(1)
    nginx_idle_s = int(re.search(r"keepalive_timeout (\d+)s;", block).group(1))
    assert nginx_idle_s < tracestore_server._OtlpHandler.timeout
