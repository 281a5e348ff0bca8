"""labkit: the standard-library toolkit behind the lab's learner-facing scripts, shared with
bench, `./lab dashboard` and the tests.

Learners run the scripts with a bare `python3`, so nothing here imports beyond the standard
library. Modules:

- `http`: a tiny JSON-over-HTTP client that returns 4xx/5xx answers instead of raising.
- `prometheus`: Prometheus's query API: instant and range queries, exemplars, alerts.
- `jaeger`: read traces from Jaeger's HTTP query API (or the lab's stand-in) and build the
  span tree, the way Jaeger's own UI does; `Span.error` is the one rule of a span in error.
- `waterfall`: render a span tree as a text waterfall and break its time down.
- `shop`: the record store's HTTP API, one call per step of a shopper's journey.
- `journey`: one traced purchase, as `trace_purchase_journey.py` prints it.
- The load test: `patterns` (arrival patterns, the journey mix, the run's configuration),
  `shoppers` (one virtual shopper's walk), `stats` (what they saw, the SLO verdict),
  `loadgen` (the scheduler that starts them), `loadtest` (the run as the script shows it).
- `output`: the journey script's exit statuses, lines and JSON file.
- `links`: where to look next: Jaeger, Grafana and log-command addresses for both run modes.
- `checks`: the exercises' checks; `settings`: the ports of the repository's .env.
- `profiles`: the CPU profiles `./lab profile` records (speedscope JSON): which functions ran.
"""
