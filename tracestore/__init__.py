"""A small in-memory stand-in for Jaeger: OTLP/HTTP in, Jaeger's HTTP query API out."""
