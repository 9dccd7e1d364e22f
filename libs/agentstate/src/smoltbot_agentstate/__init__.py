"""The one writer of ``cfg:{agent}`` (architecture §4): versioned, compare-and-set Lua writes.

``cfg:{agent}`` is a hash. Field ``b`` holds the msgpack ``AgentConfig`` the gateway and the
verifier read; ``cfg_version`` inside it only ever moves forward. Fields ``cause:<id>`` remember
the causes already applied (e.g. an auto-containment's derived id), so a replayed trace never
re-applies a containment an operator has lifted since.

Every change is read -> decide in Python -> one Lua script that writes only if ``cfg_version``
is still the one read (else the caller re-reads and decides again, a bounded number of times).
The script reads the version with ``cmsgpack`` (as the gateway's claim script reads the mode),
so a concurrent writer can never be overwritten by a stale decision:

- :meth:`AgentState.contain` pauses (or kills) an active agent, ``cfg_version + 1``; idempotent
  per cause (already applied -> no write) and a no-op when the agent is already contained (the
  cause is then only remembered);
- :meth:`AgentState.resume` makes a contained agent active again, ``cfg_version + 1``;
- :meth:`AgentState.put` writes a whole config carrying its own version (the api's
  write-through after its PostgreSQL commit): only when that version is newer than the stored.
"""

from smoltbot_agentstate._cfg import (
    CFG_FIELD,
    WRITE_LUA,
    AgentState,
    ConfigConflictError,
    Outcome,
    WriteResult,
    cause_field,
    decode_config,
    encode_config,
)

__all__ = [
    "CFG_FIELD",
    "WRITE_LUA",
    "AgentState",
    "ConfigConflictError",
    "Outcome",
    "WriteResult",
    "cause_field",
    "decode_config",
    "encode_config",
]
