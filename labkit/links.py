"""Where to look next: Jaeger, Grafana and the logs, in either run mode (compose or native)."""

import urllib.parse

from .jaeger import CORRELATION_ID, search_api_url, search_url, trace_api_url, trace_url
from .settings import SettingsError, run_mode

API_SERVICE = "kodekloud-record-store-api"
WORKER_SERVICE = "kodekloud-record-store-worker"
GATEWAY_SERVICE = "kodekloud-record-store-gateway"
DASHBOARD_UID = "purchase-journey"
DASHBOARD_TITLE = "Purchase Journey"
MODES = ("native", "compose")


def hint_mode(asked: str | None) -> str:
    """The run mode the hints are for: the one asked for, else the lab's one rule."""
    try:
        return asked or run_mode()
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None


def grafana_url(grafana_base: str, correlation_id: str = "", trace_id: str = "") -> str:
    """The Purchase Journey dashboard, with its variables filled in when given."""
    params = {"var-correlation_id": correlation_id, "var-trace_id": trace_id}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    url = f"{grafana_base.rstrip('/')}/d/{DASHBOARD_UID}/purchase-journey"
    return f"{url}?{query}" if query else url


def log_command(mode: str, service: str, correlation_id: str) -> str:
    """The command that shows one component's log lines for a correlation id."""
    if mode == "native":
        return f"./lab logs {service} | grep {correlation_id}"
    return f"docker logs kodekloud-record-store-{service} | grep {correlation_id}"


def correlation_search(mode: str, jaeger_base: str, correlation_id: str) -> str:
    """Jaeger's search for a correlation id: the UI in compose, the query API natively (the
    stand-in has no UI)."""
    tags = {CORRELATION_ID: correlation_id}
    if mode == "compose":
        return search_url(jaeger_base, API_SERVICE, tags)
    return search_api_url(jaeger_base, API_SERVICE, tags)


def next_steps(mode: str, jaeger_base: str, grafana_base: str, correlation_id: str,
               trace_id: str) -> list[tuple[str, str]]:
    """(what, where) pairs, in the order a learner would follow them."""
    steps = []
    if trace_id and mode == "compose":
        steps.append(("the trace in Jaeger", trace_url(jaeger_base, trace_id)))
    elif trace_id:
        steps.append(("the trace (Jaeger's query API, JSON)", trace_api_url(jaeger_base, trace_id)))
    steps.append(("every trace of this journey, by its correlation id",
                  correlation_search(mode, jaeger_base, correlation_id)))
    if mode == "compose":
        steps.append(("the Grafana dashboard", grafana_url(grafana_base, correlation_id, trace_id)))
    else:
        steps.append(("the dashboard, in the terminal", f'./lab dashboard "{DASHBOARD_TITLE}"'))
    steps.extend((f"the {name}'s log lines", log_command(mode, service, correlation_id))
                 for service, name in (("gateway", "gateway"), ("api", "API"),
                                       ("worker", "worker")))
    return steps
