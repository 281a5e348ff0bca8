"""The Grafana provisioning is a valid, self-consistent model, and `./lab dashboard` reads it
the way Grafana would (variables, legends, units). The live half: e2e/test_dashboards_live.py."""

import json
import math
import re

import pytest
import yaml

from labctl import dashboard, grafana_json
from labctl.config import ROOT
from labctl.proc import LabError

GRAFANA = ROOT / "grafana"
BOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
BOARDS = {path.name: json.loads(path.read_text()) for path in BOARD_FILES}
GRAFANA_BUILTIN = {"-- Grafana --", "grafana"}  # the annotation source every dashboard has


def datasources() -> list[dict]:
    path = GRAFANA / "provisioning" / "datasources" / "datasources.yaml"
    return yaml.safe_load(path.read_text())["datasources"]


def all_panels(board: dict) -> list[dict]:
    """Every panel, rows and panels nested in collapsed rows included."""
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def datasource_uids(node: object) -> set[str]:
    """Every datasource uid referenced anywhere in a JSON document."""
    found = set()
    if isinstance(node, dict):
        ref = node.get("datasource")
        if isinstance(ref, dict) and ref.get("uid"):
            found.add(ref["uid"])
        for value in node.values():
            found |= datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= datasource_uids(value)
    return found


def test_the_three_dashboards_are_provisioned_with_their_fixed_uids():
    assert {b["uid"]: b["title"] for b in BOARDS.values()} == {
        "purchase-journey": "Purchase Journey", "service-health": "Service Health", "slos": "SLOs"}
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text())["providers"]
    assert [p["options"]["path"] for p in provider] == ["/var/lib/grafana/dashboards"]


def test_datasources_have_fixed_uids_and_exemplars_link_to_jaeger():
    by_uid = {d["uid"]: d for d in datasources()}
    assert {uid: d["type"] for uid, d in by_uid.items()} == {
        "prometheus": "prometheus", "jaeger": "jaeger", "alertmanager": "alertmanager"}
    prometheus = by_uid["prometheus"]["jsonData"]
    assert prometheus["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "jaeger"}]
    assert prometheus["httpMethod"] == "POST"
    assert by_uid["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["jaeger"]["url"] == "http://jaeger:16686"
    assert by_uid["alertmanager"]["url"] == "http://alertmanager:9093"


@pytest.mark.parametrize("name", BOARDS)
def test_panel_ids_are_unique_and_every_panel_has_a_grid_position(name):
    panels = all_panels(BOARDS[name])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in panels:
        pos = panel.get("gridPos", {})
        assert {"h", "w", "x", "y"} <= pos.keys(), panel["title"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]


@pytest.mark.parametrize("name", BOARDS)
def test_panel_titles_are_unique(name):
    titles = [p["title"] for p in all_panels(BOARDS[name]) if p["type"] != "row"]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


@pytest.mark.parametrize("name", BOARDS)
def test_every_prometheus_query_names_the_prometheus_datasource(name):
    for panel in all_panels(BOARDS[name]):
        for target in panel.get("targets", []):
            if "expr" in target:
                assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}, (
                    panel["title"])
                assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("name", BOARDS)
def test_every_datasource_referenced_is_provisioned(name):
    provisioned = {d["uid"] for d in datasources()}
    assert datasource_uids(BOARDS[name]) - GRAFANA_BUILTIN <= provisioned
    names = {d["name"] for d in datasources()}
    for panel in all_panels(BOARDS[name]):
        if panel["type"] == "alertlist":  # the alert list filters by datasource name
            assert panel["options"]["datasource"] in names, panel["title"]


@pytest.mark.parametrize("name", BOARDS)
def test_queries_use_only_variables_the_dashboard_defines(name):
    board = BOARDS[name]
    for title, ref, expr in grafana_json.queries(board):
        assert "$" not in expr, f"{title} ({ref}): unresolved variable in {expr}"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), title


def test_every_dashboard_has_prometheus_panels_for_the_live_check():
    for board in BOARDS.values():
        assert len(grafana_json.queries(board)) >= 10, board["title"]


def test_purchase_journey_has_the_guides_panel_groups_and_the_trace_variables():
    board = BOARDS["purchase-journey.json"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Request flow stages", "End-to-end journey time",
                    "Distributed trace analysis", "Business KPIs"]
    variables = {v["name"]: v["type"] for v in board["templating"]["list"]}
    assert variables == {"correlation_id": "textbox", "trace_id": "textbox"}
    jaeger_targets = json.dumps([t for p in all_panels(board) for t in p.get("targets", [])
                                 if t.get("datasource", {}).get("uid") == "jaeger"])
    assert "$correlation_id" in jaeger_targets and "$trace_id" in jaeger_targets
    links = json.dumps([board["links"], *[p.get("links", []) for p in all_panels(board)]])
    assert "${trace_id}" in links and "${correlation_id}" in links
    exemplars = [t for p in all_panels(board) for t in p.get("targets", []) if t.get("exemplar")]
    assert exemplars, "the latency panel shows exemplars, which link to traces"


def test_the_scripts_link_to_this_dashboard():
    links = (ROOT / "labkit" / "links.py").read_text()
    assert 'DASHBOARD_UID = "purchase-journey"' in links
    assert '"var-correlation_id"' in links and '"var-trace_id"' in links


# ------------------------------------------------------------------ labctl.dashboard


def test_find_by_title_or_uid_and_a_clear_error_otherwise():
    assert grafana_json.find("purchase journey")["uid"] == "purchase-journey"
    assert grafana_json.find("slos")["title"] == "SLOs"
    with pytest.raises(LabError, match="Service Health"):
        grafana_json.find("Nope")


def test_variables_fill_builtins_defaults_all_and_overrides():
    board = {"templating": {"list": [
        {"name": "queue", "type": "custom", "current": {"text": "All", "value": "$__all"}},
        {"name": "env", "type": "custom", "allValue": "prod|dev",
         "current": {"text": "All", "value": ["$__all"]}},
        {"name": "trace_id", "type": "textbox", "query": "", "current": {"value": ""}},
        {"name": "db", "type": "constant", "query": "recordstore"},
    ]}}
    values = grafana_json.variables(board, {"trace_id": "abc"})
    assert values["queue"] == ".*" and values["trace_id"] == "abc"
    assert values["db"] == "recordstore"
    assert values["__rate_interval"] == "1m" and values["__range"] == "1h"
    expr = 'rate(x{q=~"$queue",db="${db}",t="[[trace_id]]",e=~"${env:regex}"}[$__rate_interval])'
    assert grafana_json.substitute(expr, values) == (
        'rate(x{q=~".*",db="recordstore",t="abc",e=~"prod|dev"}[1m])')
    assert grafana_json.substitute("$__range_s $unknown", values) == "3600 $unknown"


def test_substitute_handles_every_variable_syntax():
    values = {"a": "1", "b_c": "2"}
    assert grafana_json.substitute("$a ${a} ${a:regex} [[a]] $b_c $bc", values) == "1 1 1 1 2 $bc"


def test_panels_walks_rows_in_order_including_collapsed_ones():
    board = {"panels": [
        {"type": "stat", "title": "top"},
        {"type": "row", "title": "R1", "panels": []},
        {"type": "stat", "title": "a"},
        {"type": "row", "title": "R2", "collapsed": True,
         "panels": [{"type": "stat", "title": "b"}]},
    ]}
    assert [(row, p["title"]) for row, p in grafana_json.panels(board)] == [
        ("", "top"), ("R1", "a"), ("R2", "b")]


def test_prometheus_targets_inherit_the_panel_datasource():
    panel = {"datasource": {"uid": "prometheus"},
             "targets": [{"expr": "up"}, {"expr": "x", "datasource": {"uid": "other"}}, {}]}
    assert [t["expr"] for t in grafana_json.prometheus_targets(panel)] == ["up"]
    assert not grafana_json.is_prometheus({"datasource": {"uid": "jaeger"}, "targets": [{}]})


def test_legend_formats_like_grafana():
    metric = {"handler": "/checkout", "status": "404"}
    assert dashboard.legend("{{handler}} {{ status }}", metric) == "/checkout 404"
    assert dashboard.legend("", metric) == "handler=/checkout, status=404"
    assert dashboard.legend("{{missing}}", {}) == "value"


@pytest.mark.parametrize("value,kwargs,shown", [
    (0.0473, {"unit": "s"}, "47 ms"),
    (3.9, {"unit": "s"}, "3.90 s"),
    (0.875, {"unit": "percentunit", "decimals": 1}, "87.5 %"),
    (1441.43, {"unit": "currencyUSD"}, "$1,441.43"),
    (0.15, {"unit": "reqps", "decimals": 2}, "0.15 req/s"),
    (69.0, {}, "69"),
    (math.nan, {"unit": "s"}, "NaN"),
    (1.0, {"mappings": [{"type": "value", "options": {"1": {"text": "UP"}}}]}, "UP"),
    (0.0, {"mappings": [{"type": "value", "options": {"0": {"text": "DOWN"}}}]}, "DOWN"),
])
def test_format_value(value, kwargs, shown):
    assert dashboard.format_value(value, **kwargs) == shown


def test_sparkline_scales_and_marks_gaps():
    assert dashboard.sparkline([0, 1, math.nan, 2]) == "▁▅ █"
    assert dashboard.sparkline([math.nan]) == ""


def test_logfmt_reads_grafanas_jaeger_tags():
    assert grafana_json.logfmt('error=true correlation_id="abc-1" empty=""') == {
        "error": "true", "correlation_id": "abc-1", "empty": ""}


def test_var_overrides_need_name_equals_value():
    overrides = grafana_json.parse_overrides(["trace_id=abc", "x=a=b"])
    assert overrides == {"trace_id": "abc", "x": "a=b"}
    with pytest.raises(LabError):
        grafana_json.parse_overrides(["trace_id"])


def test_rendered_panels_show_values_no_data_and_errors():
    board = {"title": "T", "uid": "t", "templating": {"list": []}}
    views = [
        dashboard.PanelView(row="R", title="Rate", type="stat", prometheus=True,
                            series=[dashboard.Series("checkouts / s", 0.5)],
                            format={"unit": "reqps"}),
        dashboard.PanelView(row="R", title="Empty", type="stat", prometheus=True,
                            notes=["A: No data"]),
        dashboard.PanelView(row="R", title="Broken", type="stat", prometheus=True,
                            errors=["A: parse error"]),
    ]
    text = dashboard.render(board, views)
    assert re.search(r"^  Rate\n +checkouts / s +0.5 req/s$", text, re.M)
    assert "  Empty\n      A: No data" in text
    assert "ERROR A: parse error" in text
