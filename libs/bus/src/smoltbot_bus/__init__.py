"""Redis Streams bus: buffered publisher with spool, consumer groups with DLQ, worker runtime.

Public surface: :class:`Publisher`, :class:`Spool`, :class:`EventCipher`, :class:`Consumer`,
:class:`ConsumerConfig`, :class:`Delivery`, :class:`Output`, :class:`InvalidEvent`,
:class:`Retryable`, :class:`DeadLetter`, :class:`BusUnavailable`, :class:`WorkerRuntime`.
The circuit breaker the publisher takes is :class:`smoltbot_resilience.CircuitBreaker`.
"""

from smoltbot_bus._consumer import Consumer
from smoltbot_bus._crypto import EventCipher, EventKeyError
from smoltbot_bus._dlq import DeadLetter
from smoltbot_bus._publisher import BusUnavailable, Publisher
from smoltbot_bus._runtime import WorkerRuntime, redis_client
from smoltbot_bus._spool import Spool
from smoltbot_bus._streams import trim_stream
from smoltbot_bus._types import (
    ConsumerConfig,
    Delivery,
    Handler,
    InvalidEvent,
    Output,
    Retryable,
)

__all__ = [
    "BusUnavailable",
    "Consumer",
    "ConsumerConfig",
    "DeadLetter",
    "Delivery",
    "EventCipher",
    "EventKeyError",
    "Handler",
    "InvalidEvent",
    "Output",
    "Publisher",
    "Retryable",
    "Spool",
    "WorkerRuntime",
    "redis_client",
    "trim_stream",
]
