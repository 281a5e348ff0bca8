"""What the load test's traffic looks like: arrival-rate patterns over time, the mix of
journeys shoppers take, and the run's configuration.

The model is an open one, like a real shop's: shoppers *arrive* at a target rate that a pattern
shapes over time. `users` scales the rate: at a pattern's baseline each user starts about three
journeys a minute, so the default 10 users give 30 journeys a minute and a flash sale ramps that
to 300.
"""

from collections.abc import Callable
from dataclasses import dataclass

BASELINE_JOURNEYS_PER_USER_PER_MIN = 3.0
DEFAULT_CYCLE_S = 600.0  # one pattern cycle when the run has no duration to stretch it over


@dataclass(frozen=True)
class JourneyType:
    weight: float  # its share of the arrivals, against the other types' weights
    description: str  # what the shopper does


JOURNEYS: dict[str, JourneyType] = {
    "browse": JourneyType(weight=35, description="browse only"),
    "view": JourneyType(weight=30, description="view an album"),
    "abandon": JourneyType(weight=15, description="abandon at checkout"),
    "buy_one": JourneyType(weight=15, description="buy one"),
    "buy_several": JourneyType(weight=5, description="buy several"),
}
PAYMENT_MIX = {"credit_card": 60, "paypal": 20, "apple_pay": 15, "gift_card": 5}
# A genre's pull on shoppers; genres the catalog lists but this does not name weigh 5.
GENRE_POPULARITY = {"Rock": 25, "Jazz": 15, "Electronic": 15, "Hip-Hop": 15, "Soul": 10,
                    "Folk": 8, "Reggae": 7, "Classical": 5}


def _steady(_: float) -> float:
    return 1.0


def _flash_sale(phase: float) -> float:
    """Quiet, a ramp to ten times the traffic, the sale, then quiet again."""
    if phase < 0.2:
        return 1.0
    if phase < 0.4:
        return 1.0 + 9.0 * (phase - 0.2) / 0.2
    return 10.0 if phase < 0.8 else 1.0


def _business_hours(phase: float) -> float:
    """One shop day per cycle, from 08:00 (so traffic shows at once): the morning, a lunch
    peak, the afternoon, the evening, a quiet night."""
    hour = (8 + phase * 24) % 24
    if hour < 7 or hour >= 22:
        return 0.2
    if hour < 9:
        return 0.2 + 0.8 * (hour - 7) / 2
    if 12 <= hour < 14:
        return 1.6
    if hour < 17:
        return 1.2 if hour >= 14 else 1.0
    return 1.0 - 0.8 * (hour - 17) / 5


PATTERNS: dict[str, Callable[[float], float]] = {
    "steady": _steady,
    "flash-sale": _flash_sale,
    "business-hours": _business_hours,
}
PATTERN_PEAK = {"steady": 1.0, "flash-sale": 10.0, "business-hours": 1.6}


@dataclass(frozen=True)
class LoadConfig:
    base_url: str
    pattern: str = "steady"
    users: int = 10
    seed: int = 0
    think_time_s: float = 2.0  # mean pause between a shopper's steps
    duration_s: float | None = None  # stop starting journeys after this long ...
    journeys: int | None = None  # ... or after this many; neither: until stopped
    order_timeout_s: float = 60.0
    request_timeout_s: float = 10.0

    @property
    def cycle_s(self) -> float:
        return self.duration_s or DEFAULT_CYCLE_S

    @property
    def baseline_per_s(self) -> float:
        return self.users * BASELINE_JOURNEYS_PER_USER_PER_MIN / 60

    @property
    def peak_rate_per_s(self) -> float:
        return self.baseline_per_s * PATTERN_PEAK[self.pattern]

    def rate_per_s(self, elapsed_s: float) -> float:
        """The target journey-start rate at this moment of the run."""
        phase = (elapsed_s % self.cycle_s) / self.cycle_s
        return self.baseline_per_s * PATTERNS[self.pattern](phase)

    def describe_rate(self) -> str:
        shape = PATTERNS[self.pattern]
        base = self.users * BASELINE_JOURNEYS_PER_USER_PER_MIN
        start, low = base * shape(0), base * min(shape(i / 240) for i in range(240))
        peak = base * PATTERN_PEAK[self.pattern]
        if start == peak:
            return f"{peak:g} journeys/min"
        lowest = f" (lowest {low:g})" if low < start else ""
        return f"{start:g} -> {peak:g} journeys/min{lowest}"
