"""Prometheus helpers: one default registry per process (no multiprocess mode, one worker per pod).

Metric objects are created once at import of the module that owns them; never label by agent id.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Counter", "Gauge", "Histogram", "render_latest"]

# Buckets for fast in-process durations (gateway overhead, handler time), starting at 50 µs.
FAST_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text of the default registry and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
