"""The persister worker: idempotent batched writes of bus events into PostgreSQL."""
