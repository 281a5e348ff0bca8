"""A tiny JSON-over-HTTP client: timeouts always, and 4xx/5xx are answers, not exceptions."""

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "recordstore-labkit/1"


class Unreachable(Exception):
    """No HTTP answer at all: connection refused, reset, DNS failure or timeout."""

    def __init__(self, url: str, reason: str, timed_out: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.timed_out = timed_out


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    elapsed_ms: float
    url: str

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON (an nginx error page)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def _headers(raw: Message) -> dict[str, str]:
    return {k.lower(): v for k, v in raw.items()}


def request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Response:
    """Send one request (a JSON body if `body` is not None); raise Unreachable, never HTTPError."""
    sent = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=sent, method=method)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            payload = resp.read()
            status, got = resp.status, _headers(resp.headers)
    except urllib.error.HTTPError as err:
        with err:
            payload = err.read()
        status, got = err.code, _headers(err.headers)
    except urllib.error.URLError as err:
        reason = err.reason
        timed_out = isinstance(reason, TimeoutError)
        raise Unreachable(url, "timed out" if timed_out else str(reason), timed_out) from None
    except TimeoutError:
        raise Unreachable(url, f"timed out after {timeout_s:g}s", timed_out=True) from None
    except (OSError, http.client.HTTPException) as err:  # reset or cut off mid-answer
        raise Unreachable(url, str(err) or type(err).__name__) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Response(status, got, payload, elapsed_ms, url)


def get(url: str, headers: dict[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S) -> Response:
    return request("GET", url, headers=headers, timeout_s=timeout_s)


def post(url: str, body: Any, headers: dict[str, str] | None = None,
         timeout_s: float = DEFAULT_TIMEOUT_S) -> Response:
    return request("POST", url, body=body, headers=headers, timeout_s=timeout_s)
