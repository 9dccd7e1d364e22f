"""Waiting on a dependency, one way everywhere.

Every loop that waits for Redis, PostgreSQL or a crashed child uses :class:`Backoff` for its
delays, :func:`retry_until` when it retries one call until it succeeds, and
:class:`CircuitBreaker` when callers must stop trying for a while instead of waiting on a
dependency that is known to be down.
"""

from smoltbot_resilience._backoff import Backoff, sleep_or_stop
from smoltbot_resilience._breaker import CircuitBreaker
from smoltbot_resilience._retry import retry_until

__all__ = ["Backoff", "CircuitBreaker", "retry_until", "sleep_or_stop"]
