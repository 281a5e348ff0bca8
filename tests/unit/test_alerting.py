"""Alert rules and Alertmanager: valid, tested by promtool, and complete."""

import re
import subprocess

import pytest
import yaml

from labctl.config import ROOT

RULES = ROOT / "prometheus" / "rules"
ALERTS = [r for g in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
          for r in g["rules"] if "alert" in r]
TESTS = yaml.safe_load((ROOT / "prometheus" / "tests" / "alerts.test.yml").read_text())
AM = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_promtool_accepts_the_rules():
    r = run("promtool", "check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_unit_tests_pass():
    r = run("promtool", "test", "rules", "prometheus/tests/alerts.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_amtool_accepts_the_alertmanager_config():
    r = run("amtool", "check-config", "prometheus/alertmanager.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_guides_alerts_and_ours_exist():
    names = {a["alert"] for a in ALERTS}
    assert {"HighCheckoutErrorRate", "SlowCheckout", "HighJobFailureRate", "DatabaseDown",
            "BrokerDown", "WorkerDown", "QueueBacklogGrowing", "OrderProcessingSlow",
            "CheckoutErrorBudgetBurnFast", "CheckoutErrorBudgetBurnSlow"} <= names


@pytest.mark.parametrize("rule", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_every_alert_is_actionable(rule):
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    ann = rule["annotations"]
    assert "{{ $value" in ann["summary"], "the summary quotes the value"
    assert len(ann["description"]) > 40
    assert re.fullmatch(r"exercises/[0-9]{2}-[a-z-]+/README\.md", ann["runbook_url"])
    runbook = ROOT / ann["runbook_url"]
    assert runbook.is_file(), f"{ann['runbook_url']} does not exist"
    assert rule["alert"] in runbook.read_text(), f"{ann['runbook_url']} never names the alert"


@pytest.mark.parametrize("rule", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_every_alert_has_a_firing_and_a_quiet_promtool_case(rule):
    checks = [c for t in TESTS["tests"] for c in t["alert_rule_test"]
              if c["alertname"] == rule["alert"]]
    assert any(c["exp_alerts"] for c in checks), "no case where it fires"
    assert any(not c["exp_alerts"] for c in checks), "no case where it stays quiet"


def test_routing_covers_every_severity_and_receivers_exist():
    receivers = {r["name"] for r in AM["receivers"]}
    routes = {m for r in AM["route"]["routes"] for m in r["matchers"]}
    for severity in {a["labels"]["severity"] for a in ALERTS}:
        assert f'severity="{severity}"' in routes
    assert {r["receiver"] for r in AM["route"]["routes"]} | {AM["route"]["receiver"]} <= receivers


def test_inhibition_names_real_alerts():
    names = {a["alert"] for a in ALERTS}
    for rule in AM["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            pattern = re.fullmatch(r'alertname=~?"(.*)"', matcher).group(1)
            for name in pattern.split("|"):
                assert name in names, name
    database = next(r for r in AM["inhibit_rules"] if "DatabaseDown" in r["source_matchers"][0])
    targets = database["target_matchers"][0]
    for symptom in ("HighCheckoutErrorRate", "CheckoutErrorBudgetBurnFast",
                    "CheckoutErrorBudgetBurnSlow"):
        assert symptom in targets
