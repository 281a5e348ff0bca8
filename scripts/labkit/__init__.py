"""labkit: the standard-library toolkit behind the lab's learner-facing scripts.

Learners run the scripts with a bare `python3`, so nothing here imports beyond the standard
library. Modules:

- `http`: a tiny JSON-over-HTTP client that returns 4xx/5xx answers instead of raising.
- `jaeger`: read traces from Jaeger's HTTP query API (or the lab's stand-in) and build the
  span tree, the way Jaeger's own UI does.
- `waterfall`: render a span tree as a text waterfall and break its time down.
- `shop`: the record store's HTTP API, one call per step of a shopper's journey.
- `loadgen`: virtual shoppers, traffic patterns, the statistics and the SLO verdict.
- `links`: where to look next: Jaeger, Grafana and log-command addresses for both run modes.
"""
