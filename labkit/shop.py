"""The record store's HTTP API as a shopper uses it: one call per step, never an exception.

Every call sends the journey's correlation id and returns a `Step` with what came back: the
status (0 when nothing answered), latency, the ids the answer carried and, for anything but a
2xx, an error kind such as "503 database_unavailable" or "connection refused".
"""

import re
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from . import http

CORRELATION_HEADER = "X-Correlation-ID"
# The gateway keeps an id that matches this and refuses (400) one that does not.
CORRELATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
PAYMENT_METHODS = ("credit_card", "paypal", "apple_pay", "gift_card")


# The lab's own shoppers mark their correlation ids: load tests and `./lab traffic` with
# `load-`, the checks' and `./lab status`'s test purchases with `check-`. Any other id is a
# person's: the storefront's `web-`, the journey script's `journey-` (or the id given to it),
# the gateway's own for a bare curl.
LOAD_PREFIX, CHECK_PREFIX = "load", "check"


def made_by_the_lab(correlation_id: str) -> bool:
    return correlation_id.startswith((f"{LOAD_PREFIX}-", f"{CHECK_PREFIX}-"))


def new_correlation_id(prefix: str = "journey") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Step:
    name: str  # browse, view, checkout, order
    method: str
    path: str
    status: int  # 0: no HTTP answer at all
    latency_ms: float
    correlation_id: str  # the id the answer carried, else the one sent
    trace_id: str  # X-Trace-ID of the answer, "" when there was none
    body: Any  # the JSON body, or None
    error: str | None  # None for a 2xx; else a kind: "503 database_unavailable", "timeout", ...

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def detail(self) -> str:
        """The error answer's own explanation, if it gave one."""
        if isinstance(self.body, dict) and self.body.get("detail"):
            return str(self.body["detail"])
        return ""


class Shop:
    """A client of the store's API through the gateway, for one journey (one correlation id)."""

    def __init__(self, base_url: str, correlation_id: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.correlation_id = correlation_id
        self.timeout_s = timeout_s

    def call(self, name: str, method: str, path: str, body: Any = None) -> Step:
        headers = {CORRELATION_HEADER: self.correlation_id}
        try:
            resp = http.request(method, self.base_url + path, body=body, headers=headers,
                                timeout_s=self.timeout_s)
        except http.Unreachable as exc:
            kind = "timeout" if exc.timed_out else _reason(exc.reason)
            return Step(name, method, path, 0, 0.0, self.correlation_id, "", None, kind)
        data = resp.json()
        cid = resp.header(CORRELATION_HEADER) or (
            data.get("correlation_id") if isinstance(data, dict) else None) or self.correlation_id
        error = None if resp.ok else _error_kind(resp.status, data)
        return Step(name, method, path, resp.status, resp.elapsed_ms, cid,
                    resp.header("X-Trace-ID"), data, error)

    def browse(self, genre: str | None = None, q: str | None = None, page: int = 1,
               page_size: int = 12) -> Step:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if genre:
            params["genre"] = genre
        if q:
            params["q"] = q
        return self.call("browse", "GET", "/products?" + urllib.parse.urlencode(params))

    def view(self, product_id: int) -> Step:
        return self.call("view", "GET", f"/products/{product_id}")

    def checkout(self, product_id: int, quantity: int = 1,
                 customer_email: str = "learner@example.com",
                 payment_method: str = "credit_card") -> Step:
        return self.call("checkout", "POST", "/checkout", {
            "product_id": product_id, "quantity": quantity,
            "customer_email": customer_email, "payment_method": payment_method,
        })

    def order(self, order_id: int) -> Step:
        return self.call("order", "GET", f"/orders/{order_id}")


def _error_kind(status: int, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"{status} {body['error']}"
    return f"{status} http_error"


def _reason(reason: str) -> str:
    # "[Errno 111] Connection refused" -> "connection refused": one kind, whatever the errno.
    return re.sub(r"^\[Errno -?\d+\]\s*", "", reason).strip().lower() or "no answer"
