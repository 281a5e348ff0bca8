"""The load test's scheduler: starts virtual shoppers at the pattern's rate until it is told
to stop or its bound is reached. The traffic's shape is in patterns.py, a shopper's walk in
shoppers.py, what they saw in stats.py.
"""

import random
import threading
import time

from .patterns import PATTERNS, LoadConfig
from .shoppers import Shopper
from .stats import Stats

MAX_IN_FLIGHT = 256  # shoppers at once; beyond it arrivals wait (reported as a lower rate)


class LoadTest:
    """Starts shoppers at the pattern's rate, on a thread of its own, until it is told to stop
    or its bound (duration or number of journeys) is reached."""

    def __init__(self, config: LoadConfig, correlation_prefix: str) -> None:
        if config.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {config.pattern!r}")
        self.config = config
        self.stats = Stats()
        self.stop = threading.Event()  # set: no more arrivals, shoppers leave after this step
        self.arrivals_done = threading.Event()
        self.started = 0
        self._prefix = correlation_prefix
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._active = 0
        self._idle = threading.Condition()
        self._pacer = threading.Thread(target=self._arrivals, name="arrivals", daemon=True)

    def start(self) -> None:
        self._pacer.start()

    def elapsed_s(self) -> float:
        return time.monotonic() - self.stats.started

    def _arrivals(self) -> None:
        """A Poisson process at the pattern's rate: thinning of one at the pattern's peak."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:arrivals")
        peak = cfg.peak_rate_per_s
        try:
            while not self.stop.wait(rng.expovariate(peak)):
                elapsed = self.elapsed_s()
                if cfg.duration_s is not None and elapsed >= cfg.duration_s:
                    return
                if rng.random() * peak > cfg.rate_per_s(elapsed):
                    continue
                while not self._slots.acquire(timeout=0.5):
                    if self.stop.is_set():
                        return
                shopper = Shopper(self.started, cfg, self.recorder(elapsed), self.stop,
                                  self._prefix)
                with self._idle:
                    self._active += 1
                threading.Thread(target=self._visit, args=(shopper,), daemon=True).start()
                self.started += 1
                if cfg.journeys is not None and self.started >= cfg.journeys:
                    return
        finally:
            self.arrivals_done.set()

    def recorder(self, elapsed_s: float) -> Stats:
        """Where a shopper arriving now records what it saw (a ramp: its step's stats too)."""
        return self.stats

    def _visit(self, shopper: Shopper) -> None:
        try:
            shopper.run()
        finally:
            self._slots.release()
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def in_flight(self) -> int:
        with self._idle:
            return self._active

    def finished(self) -> bool:
        return self.arrivals_done.is_set() and self.in_flight() == 0

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Stop arrivals and shoppers (each leaves after its current request); True if all left
        within the timeout."""
        self.stop.set()
        self._pacer.join(timeout_s)
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_s)
