"""The Celery worker: thin task wrappers over recordstore.fulfilment."""
