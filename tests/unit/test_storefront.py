"""The storefront is plain files the gateway serves, nothing loaded from another host; its one
built file, the OpenTelemetry bundle, rebuilds byte for byte from storefront/'s lock file."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labctl.config import ROOT
from tracestore.otlp import JSON, decode_spans

HTML = ROOT / "nginx" / "html"
SOURCE = ROOT / "storefront"
BUNDLE = HTML / "assets" / "otel-web.js"


def run(argv: list[str], cwd: Path) -> None:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"


def test_the_committed_bundle_rebuilds_from_the_lock_file(tmp_path):
    npm, node = shutil.which("npm"), shutil.which("node")
    if not (npm and node):
        pytest.fail("node and npm are needed: ./lab test installs Debian's npm (as root)")
    work = tmp_path / "storefront"
    shutil.copytree(SOURCE, work, ignore=shutil.ignore_patterns("node_modules"))
    run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], work)
    run([node, "build.mjs", str(tmp_path / "otel-web.js")], work)
    rebuilt = (tmp_path / "otel-web.js").read_bytes()
    assert rebuilt == BUNDLE.read_bytes(), (
        "nginx/html/assets/otel-web.js is not what storefront/ builds: "
        "run `npm ci && npm run build` in storefront/ and commit the result")


def test_dependencies_are_pinned_exactly():
    package = json.loads((SOURCE / "package.json").read_text())
    versions = {**package.get("dependencies", {}), **package["devDependencies"]}
    assert versions and all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in versions.values()), versions
    lock = json.loads((SOURCE / "package-lock.json").read_text())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]


def test_the_page_loads_nothing_from_another_host():
    index = (HTML / "index.html").read_text()
    loaded = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', index)
    assert loaded and all(url.startswith("/assets/") or url.startswith("data:")
                          for url in loaded), loaded
    for url in loaded:
        if url.startswith("/assets/"):
            assert (HTML / url.lstrip("/")).is_file(), url
    assert "url(" not in (HTML / "assets" / "store.css").read_text()
    app = (HTML / "assets" / "app.js").read_text()
    assert re.findall(r"import\(\s*'([^']+)'", app) == ["./otel-web.js"]
    # The only absolute URLs are the links to Jaeger and Grafana, on the page's own host.
    assert re.findall(r"https?://(?!\$\{lab\.host\})", app) == []


def test_the_bundle_names_the_web_service_and_exports_through_the_gateway():
    bundle = BUNDLE.read_text()
    assert "kodekloud-record-store-web" in bundle
    assert "/otlp/v1/traces" in bundle


def test_the_trace_store_reads_what_the_browser_exporter_sends():
    # The shape @opentelemetry/exporter-trace-otlp-http sends from a browser (captured from the
    # storefront): hex ids, nanoseconds as strings, enums as numbers, "flags", no parent on a root.
    trace_id = "9ed1a478bfd808d34f78c0c10e82be2a"
    root, child = "893b9a66cd0ba4e9", "69cadfb0be7a7a1a"
    span = {"traceId": trace_id, "kind": 1, "status": {"code": 0}, "links": [],
            "droppedAttributesCount": 0, "droppedEventsCount": 0, "droppedLinksCount": 0,
            "flags": 257, "startTimeUnixNano": "1795316946321099902",
            "endTimeUnixNano": "1795316946340599902"}
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "kodekloud-record-store-web"}}],
                     "droppedAttributesCount": 0},
        "scopeSpans": [{"scope": {"name": "kodekloud-record-store-storefront"}, "spans": [
            {**span, "spanId": root, "name": "buy_record", "attributes": [
                {"key": "quantity", "value": {"intValue": 2}},
                {"key": "payment.method", "value": {"stringValue": "paypal"}}], "events": []},
            {**span, "spanId": child, "parentSpanId": root, "name": "POST", "kind": 3,
             "attributes": [], "events": [{"attributes": [], "name": "fetchStart",
                                           "timeUnixNano": "1795316946321099902",
                                           "droppedAttributesCount": 0}]},
        ]}],
    }]}
    decoded = decode_spans(json.dumps(document).encode(), JSON)
    assert {t for t, _ in decoded} == {trace_id}
    spans = {s.span_id: s.span for _, s in decoded}
    buy, fetch = spans[root], spans[child]
    assert buy.references == () and buy.process.service == "kodekloud-record-store-web"
    assert ("quantity", "int64", 2) in buy.tags
    assert fetch.references == (("CHILD_OF", trace_id, root),)
    assert ("span.kind", "string", "client") in fetch.tags
    assert fetch.start_us == 1795316946321099 and fetch.duration_us == 19500
    assert fetch.logs[0][1] == (("event", "string", "fetchStart"),)


def test_the_links_to_jaeger_and_grafana_follow_the_ports_of_env(tmp_path):
    """A port changed in .env reaches the order page's links: the gateway renders the two ports
    at /gateway/links (natively from ./lab's settings; compose and Kubernetes pass them in its
    environment, tests/static/test_compose.py), and the page builds its links from them."""
    from labctl import config_files
    from labctl.config import load

    cfg = load({"LAB_HOME": str(tmp_path / "home"), "JAEGER_UI_PORT": "26686",
                "GRAFANA_PORT": "13000"})
    config_files.write_nginx(cfg)
    conf = (config_files.nginx_dir(cfg) / "conf.d" / "default.conf").read_text()
    links = re.search(r"location = /gateway/links \{[^}]*return 200 '(.*)\\n';", conf).group(1)
    assert json.loads(links) == {"jaeger_ui_port": "26686", "grafana_port": "13000"}
    app = (HTML / "assets" / "app.js").read_text()
    assert "plainFetch('/gateway/links'" in app
    for field, used in (("jaeger_ui_port", "lab.jaegerPort"), ("grafana_port", "lab.grafanaPort")):
        assert f"{used} = ports.{field}" in app, field
    assert "${lab.host}:${lab.jaegerPort}" in app and "${lab.host}:${lab.grafanaPort}" in app
    # The first view waits for the ports, so no link is drawn with the defaults first.
    assert app.rstrip().endswith("linksRead.then(() => route(true));")
