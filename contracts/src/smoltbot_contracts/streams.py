"""Stream names and Redis key names (architecture §3, §4). All keys carry the configured prefix."""

from __future__ import annotations

EXCHANGES = "exchanges"
EXCHANGES_PRIORITY = "exchanges:priority"
TRACES = "traces"
TRACES_PRIORITY = "traces:priority"
VERDICTS = "verdicts"
AGENTS = "agents"
CONTROL = "control"

ALL_STREAMS = (EXCHANGES, EXCHANGES_PRIORITY, TRACES, TRACES_PRIORITY, VERDICTS, AGENTS, CONTROL)
# Streams whose entries carry prompt-derived bytes: short retention, optional encryption.
BODY_STREAMS = (EXCHANGES, EXCHANGES_PRIORITY, TRACES, TRACES_PRIORITY)

DEFAULT_PREFIX = "smoltbot:"


def stream_key(prefix: str, stream: str) -> str:
    return f"{prefix}{stream}"


def dlq_key(prefix: str, stream: str) -> str:
    return f"{prefix}dlq:{stream}"


def reply_key(prefix: str, gateway_instance: str) -> str:
    return f"{prefix}replies:{gateway_instance}"


# One agent's keys share a hash tag so they can live on one cluster shard.
def cfg_key(prefix: str, agent: str) -> str:
    return f"{prefix}cfg:{{{agent}}}"


def card_key(prefix: str, agent: str) -> str:
    return f"{prefix}card:{{{agent}}}"


def nudges_key(prefix: str, agent: str) -> str:
    return f"{prefix}nudges:{{{agent}}}"


def nudges_pending_key(prefix: str, agent: str) -> str:
    """Sorted set of the agent's pending nudge ids, scored by ``created_ms`` (oldest first)."""
    return f"{prefix}nudges:{{{agent}}}:pending"


def nudge_session_key(prefix: str, agent: str, session: str) -> str:
    """Sorted set of one session's boundary-violation checkpoint ids scored by completion time
    (the ``threshold`` strategy)."""
    return f"{prefix}nudges:{{{agent}}}:session:{session}"


def runtime_key(prefix: str, agent: str) -> str:
    """Hash of the agent's recent checkpoint entries (checkpoint id -> entry JSON), written by
    the verifier only (architecture §4)."""
    return f"{prefix}rt:{{{agent}}}"


def runtime_order_key(prefix: str, agent: str) -> str:
    """Sorted set indexing ``rt:{agent}``: checkpoint ids scored by completion time (ms)."""
    return f"{prefix}rt:{{{agent}}}:order"
