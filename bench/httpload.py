"""Open-loop HTTP load: requests leave on a fixed schedule, whatever the answers do.

Each request's latency runs from its *intended* send time, not from the moment a connection was
free, so a slow server cannot slow the generator down and hide its own queueing (coordinated
omission). Plain HTTP/1.1 keep-alive over asyncio streams, standard library only: the generator
shares the machine's cores with the lab, so it has to be cheap.
"""

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_CONNECTIONS = 256  # beyond this, requests wait for a connection (and that wait is latency)
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    ok_status: int = 200


@dataclass
class LoadResult:
    """What one run at one arrival rate produced."""

    rate: float
    duration_s: float
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # every answered request
    max_send_lag_ms: float = 0.0  # how late the generator itself was against its schedule
    generator_cpu_s: float = 0.0
    wall_s: float = 0.0
    connections: int = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, raw: bytes) -> tuple[int, bool]:
        """Send one request, read the whole answer; (status, connection still usable)."""
        self.writer.write(raw)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, keep = 0, False, True
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                keep = value != b"close"
        if chunked:
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        elif length:
            await self.reader.readexactly(length)
        return status, keep

    def close(self) -> None:
        self.writer.close()


class _Pool:
    """Keep-alive connections to one host, opened on demand up to MAX_CONNECTIONS."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def acquire(self) -> _Connection:
        await self.slots.acquire()
        if self.idle:
            return self.idle.pop()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self.slots.release()
            raise
        self.opened += 1
        return _Connection(reader, writer)

    def release(self, conn: _Connection, reusable: bool) -> None:
        if reusable:
            self.idle.append(conn)
        else:
            conn.close()
        self.slots.release()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def _raw(req: Request, host: str, port: int) -> bytes:
    head = (f"{req.method} {req.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"User-Agent: lab-bench\r\nAccept: application/json\r\n")
    if req.body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n"
    return (head + "\r\n").encode() + req.body


async def _run(host: str, port: int, rate: float, duration_s: float,
               make_request: Callable[[int], Request]) -> LoadResult:
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port)
    result = LoadResult(rate=rate, duration_s=duration_s)
    count = max(1, round(rate * duration_s))
    pending: set[asyncio.Task] = set()

    async def one(req: Request, intended: float) -> None:
        try:
            conn = await asyncio.wait_for(pool.acquire(), REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            result.errors[f"connect: {type(exc).__name__}"] += 1
            return
        reusable = False
        try:
            status, reusable = await asyncio.wait_for(
                conn.exchange(_raw(req, host, port)), REQUEST_TIMEOUT_S
            )
        except TimeoutError:
            result.errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            result.errors["connection"] += 1
        else:
            result.latencies_ms.append((loop.time() - intended) * 1000)
            if status == req.ok_status:
                result.ok += 1
            else:
                result.errors[f"status {status}"] += 1
        finally:
            pool.release(conn, reusable)

    cpu0, wall0 = time.process_time(), loop.time()
    start = wall0 + 0.05
    for i in range(count):
        intended = start + i / rate
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_send_lag_ms = max(result.max_send_lag_ms, (loop.time() - intended) * 1000)
        task = loop.create_task(one(make_request(i), intended))
        pending.add(task)
        task.add_done_callback(pending.discard)
        result.sent += 1
    if pending:
        await asyncio.wait(pending)
    result.wall_s = loop.time() - start
    result.generator_cpu_s = time.process_time() - cpu0
    result.connections = pool.opened
    pool.close()
    return result


def run_open_loop(base_url: str, rate: float, duration_s: float,
                  make_request: Callable[[int], Request]) -> LoadResult:
    """Send round(rate * duration_s) requests at `rate` per second; wait for every answer."""
    host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
    return asyncio.run(_run(host, int(port or 80), rate, duration_s, make_request))
