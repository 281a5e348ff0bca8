"""The CPU the API uses, against what it can use: is the API CPU-bound?

prometheus_client's process metrics describe only the process that answers a scrape, and its
multiprocess mode (API_WORKERS > 1) exports none at all. A learner who asks whether the API
saturated its CPU needs every process that serves it: uvicorn's server process and each worker
it started. So, at scrape time, whichever worker answers:

- `recordstore_api_cpu_seconds_total`: the user and system CPU time those processes have
  used, summed (a worker that ended takes its seconds with it: rate() sees a counter reset);
- `recordstore_api_cpu_limit_cores`: how many cores they can keep busy at once: one a
  worker (Python runs one thread of a process at a time), at most the cores the machine lets
  them run on.

`rate(recordstore_api_cpu_seconds_total[30s]) / recordstore_api_cpu_limit_cores` near 1 is a
saturated API: its requests queue for the CPU."""

import os
from collections.abc import Iterator

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

SPAWNED_WORKER = "spawn_main"  # multiprocessing's command line for a worker uvicorn started


def spawned(process: psutil.Process) -> bool:
    """Whether uvicorn (--workers N > 1) started this process as one of its workers."""
    return any(SPAWNED_WORKER in part for part in process.cmdline())


def server_process(me: psutil.Process) -> psutil.Process:
    """uvicorn's server process: this one's parent when it is one of uvicorn's workers, else
    this process itself."""
    parent = me.parent()
    try:
        if parent is not None and spawned(me) and any("uvicorn" in p for p in parent.cmdline()):
            return parent
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return me


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def api_cpu() -> tuple[float, int]:
    """(CPU seconds used by the API's processes, the cores they can keep busy)."""
    me = psutil.Process()
    server = server_process(me)
    family = [server, *server.children(recursive=True)] if server.pid != me.pid else [me]
    seconds, workers = 0.0, 0
    for process in family:
        try:
            times = process.cpu_times()
            workers += process.pid == me.pid or spawned(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # ended meanwhile
            continue
        seconds += times.user + times.system
    return seconds, min(max(workers, 1), usable_cores())


class ApiCpuCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        seconds, cores = api_cpu()
        yield CounterMetricFamily(
            "recordstore_api_cpu_seconds", "CPU time (user and system) used by all the API's "
            "processes: uvicorn's server and its workers.", value=seconds)
        yield GaugeMetricFamily(
            "recordstore_api_cpu_limit_cores", "Cores the API's processes can keep busy at "
            "once: one a worker, at most the cores they may run on.", value=cores)
