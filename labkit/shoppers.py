"""A virtual shopper: arrives, walks one journey with think time between steps, and leaves.

Everything random derives from the run's seed: per shopper n, the journey, genres, albums and
payment methods come from `random.Random(f"{seed}:{n}")`, so `--seed` reproduces a run's mix.
"""

import random
import threading
import time
from typing import Any

from .patterns import GENRE_POPULARITY, JOURNEYS, PAYMENT_MIX, LoadConfig
from .rules import FINAL_STATUSES
from .shop import Shop, Step
from .stats import Stats

ORDER_POLL_S = 1.0


class Shopper:
    """One virtual user: arrives, walks one journey, leaves."""

    def __init__(self, number: int, config: LoadConfig, stats: Stats, stop: threading.Event,
                 correlation_prefix: str) -> None:
        self.number = number
        self.config = config
        self.stats = stats
        self.stop = stop
        self.rng = random.Random(f"{config.seed}:{number}")
        self.shop = Shop(config.base_url, f"{correlation_prefix}-{number}",
                         config.request_timeout_s)
        self.kind = self.rng.choices(list(JOURNEYS), [j.weight for j in JOURNEYS.values()])[0]
        self.favourite = ""
        self.failed = False

    def run(self) -> None:
        journeys = {"browse": self._browse_only, "view": self._view_albums,
                    "abandon": self._abandon_at_checkout, "buy_one": self._buy_one,
                    "buy_several": self._buy_several}
        self.stats.journey_started(self.kind)
        try:
            journeys[self.kind]()
        finally:
            self.stats.journey_finished(self.kind, not self.failed)

    def _browse_only(self) -> None:
        self._browse_more(self._landing(), most=2)

    def _view_albums(self) -> list[dict[str, Any]]:
        items = self._browse_more(self._landing(), most=1)
        return self._view(items, self.rng.randint(1, 3))

    def _abandon_at_checkout(self) -> None:
        if self._view_albums():
            self._think(factor=3)  # reads the total at checkout, then leaves

    def _buy_one(self) -> None:
        self._buy(self._view_albums()[-1:])

    def _buy_several(self) -> None:
        items = self._browse_more(self._landing(), most=1)
        albums = self._view(items, self.rng.randint(2, 4))
        self._buy(self.rng.sample(albums, min(len(albums), self.rng.randint(2, 3))))

    def _do(self, step: Step) -> Step:
        self.stats.step(step)
        if step.error:
            self.failed = True
        return step

    def _think(self, factor: float = 1.0) -> bool:
        """Pause like a person reading the page; False when the run is stopping."""
        pause = self.rng.uniform(0.5, 1.5) * self.config.think_time_s * factor
        return not self.stop.wait(pause)

    def _landing(self) -> list[dict[str, Any]]:
        step = self._do(self.shop.browse(page_size=12))
        if not step.ok or not isinstance(step.body, dict):
            return []
        genres = step.body.get("genres") or []
        if genres:
            weights = [GENRE_POPULARITY.get(g, 5) for g in genres]
            self.favourite = self.rng.choices(genres, weights)[0]
        return list(step.body.get("items") or [])

    def _browse_more(self, items: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
        """Up to `most` more catalog pages: the favourite genre, a search, a later page."""
        for _ in range(self.rng.randint(0, most)):
            if self.failed or not self._think():
                break
            roll = self.rng.random()
            if roll < 0.6 and self.favourite:
                step = self.shop.browse(genre=self.favourite)
            elif roll < 0.8 and items:
                step = self.shop.browse(q=self.rng.choice(items)["artist"].split()[0])
            else:
                step = self.shop.browse(page=self.rng.randint(2, 4))
            self._do(step)
            if step.ok and isinstance(step.body, dict) and step.body.get("items"):
                items = list(step.body["items"])
        return items

    def _view(self, items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
        """Open up to `count` albums of the page; the albums as their pages showed them."""
        seen = []
        for item in self.rng.sample(items, min(count, len(items))):
            if self.failed or not self._think():
                break
            step = self._do(self.shop.view(int(item["id"])))
            if step.ok and isinstance(step.body, dict):
                seen.append(step.body)
        return seen

    def _buy(self, albums: list[dict[str, Any]]) -> None:
        orders: dict[int, str] = {}
        for album in albums:
            quantity = 1 if self.rng.random() < 0.8 else 2
            if int(album.get("stock", 0)) < quantity:
                self.stats.no_stock()
                continue
            if self.failed or not self._think():
                break
            method = self.rng.choices(list(PAYMENT_MIX), list(PAYMENT_MIX.values()))[0]
            step = self._do(self.shop.checkout(
                int(album["id"]), quantity, f"shopper{self.number % 500}@example.com", method))
            if step.status == 202 and isinstance(step.body, dict):
                orders[int(step.body["order_id"])] = "pending"
        self._watch(orders)

    def _watch(self, orders: dict[int, str]) -> None:
        """Poll the order pages until every order is final, like a waiting customer."""
        deadline = time.monotonic() + self.config.order_timeout_s
        pending = dict(orders)
        while pending and not self.stop.wait(ORDER_POLL_S) and time.monotonic() < deadline:
            for order_id in list(pending):
                step = self._do(self.shop.order(order_id))
                if not step.ok or not isinstance(step.body, dict):
                    continue
                pending[order_id] = str(step.body.get("status", ""))
                if pending[order_id] in FINAL_STATUSES:
                    del pending[order_id]
                    self.stats.order_final(step.body, self.shop.correlation_id)
                    self.failed = self.failed or step.body.get("status") == "failed"
        timed_out = not self.stop.is_set()
        for order_id, status in pending.items():
            self.stats.order_unfinished(order_id, status, self.shop.correlation_id, timed_out)
            self.failed = self.failed or timed_out
