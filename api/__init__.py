"""The checkout API (FastAPI): routes, schemas and dependencies. The domain is in recordstore."""
