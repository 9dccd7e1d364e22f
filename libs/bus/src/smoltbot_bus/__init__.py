"""Redis Streams bus: buffered publisher, consumer groups with DLQ, and the worker runtime.

Public surface: :class:`Publisher`, :class:`Consumer`, :class:`ConsumerConfig`,
:class:`Delivery`, :class:`Output`, :class:`InvalidEvent`, :class:`WorkerRuntime`.
"""

from smoltbot_bus._consumer import Consumer
from smoltbot_bus._publisher import Publisher
from smoltbot_bus._runtime import WorkerRuntime, redis_client
from smoltbot_bus._types import ConsumerConfig, Delivery, Handler, InvalidEvent, Output

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "Delivery",
    "Handler",
    "InvalidEvent",
    "Output",
    "Publisher",
    "WorkerRuntime",
    "redis_client",
]
