"""Redis Streams bus: buffered publisher with spool, consumer groups with DLQ, worker runtime.

Public surface: :class:`Publisher`, :class:`Spool`, :class:`EventCipher`, :class:`Consumer`,
:class:`ConsumerConfig`, :class:`Delivery`, :class:`Output`, :class:`InvalidEvent`,
:class:`Retryable`, :class:`DeadLetter`, :class:`BusUnavailable`, :class:`WorkerRuntime`.
The circuit breaker the publisher takes is :class:`smoltbot_resilience.CircuitBreaker`.

For operator tools (``smoltbot streams|replay|trim``): :func:`stream_status`,
:func:`plan_replay` / :func:`replay`, :class:`Retention` with :func:`plan_trim` /
:func:`apply_trim` (what :func:`trim_stream` and the workers' housekeeping run), and the
stream-id helpers (:data:`StreamId`, :data:`MAX_SEQ`, :func:`parse_id`, :func:`format_id`,
:func:`id_before`, :func:`id_after`, :func:`range_ids` with :func:`scan_page`).
"""

from smoltbot_bus._consumer import Consumer
from smoltbot_bus._crypto import EventCipher, EventKeyError
from smoltbot_bus._dlq import DeadLetter
from smoltbot_bus._publisher import BusUnavailable, Publisher
from smoltbot_bus._replay import REPLAY_CONSUMER, ReplayError, ReplayPlan, plan_replay, replay
from smoltbot_bus._runtime import WorkerRuntime, redis_client
from smoltbot_bus._spool import Spool
from smoltbot_bus._status import ConsumerStatus, GroupStatus, StreamStatus, stream_status
from smoltbot_bus._streams import (
    MAX_SEQ,
    Retention,
    StreamId,
    TrimPlan,
    apply_trim,
    format_id,
    id_after,
    id_before,
    parse_id,
    plan_trim,
    range_ids,
    scan_page,
    trim_stream,
)
from smoltbot_bus._types import (
    ConsumerConfig,
    Delivery,
    Handler,
    InvalidEvent,
    Output,
    Retryable,
)

__all__ = [
    "MAX_SEQ",
    "REPLAY_CONSUMER",
    "BusUnavailable",
    "Consumer",
    "ConsumerConfig",
    "ConsumerStatus",
    "DeadLetter",
    "Delivery",
    "EventCipher",
    "EventKeyError",
    "GroupStatus",
    "Handler",
    "InvalidEvent",
    "Output",
    "Publisher",
    "ReplayError",
    "ReplayPlan",
    "Retention",
    "Retryable",
    "Spool",
    "StreamId",
    "StreamStatus",
    "TrimPlan",
    "WorkerRuntime",
    "apply_trim",
    "format_id",
    "id_after",
    "id_before",
    "parse_id",
    "plan_replay",
    "plan_trim",
    "range_ids",
    "redis_client",
    "replay",
    "scan_page",
    "stream_status",
    "trim_stream",
]
