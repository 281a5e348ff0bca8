"""Core of the record store: settings, data model, domain logic, telemetry and logging."""
