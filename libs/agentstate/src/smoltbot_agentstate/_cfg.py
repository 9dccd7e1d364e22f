"""The versioned cfg:{agent} writer (see the package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from smoltbot_contracts import AgentConfig, ContainmentStatus
from smoltbot_contracts.streams import cfg_key

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

log = logging.getLogger(__name__)

CFG_FIELD = b"b"
CAUSE_PREFIX = "cause:"
MAX_ATTEMPTS = 8

_DECODER = msgspec.msgpack.Decoder(AgentConfig)
_ENCODER = msgspec.msgpack.Encoder()

Outcome = Literal["written", "unchanged", "already_applied", "stale"]
"""``written``: the config moved to a new version; ``unchanged``: nothing to change (e.g. already
contained; a cause given is remembered); ``already_applied``: this cause was applied before;
``stale``: :meth:`AgentState.put` with a version not newer than the stored one."""

# KEYS: cfg:{a}
# ARGV: config field, mode ('cas' | 'newer'), expected version (cas), new config msgpack ('' =
#       no config write), new version, cause field ('' = none), cause value
# Returns {code, version now}: 1 written, 0 version moved (re-read and retry), 2 cause already
# applied, 3 cause remembered without a config write, 4 not newer (mode 'newer').
WRITE_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local current = 0
if raw then
  local ok, cfg = pcall(cmsgpack.unpack, raw)
  if ok and type(cfg) == 'table' and tonumber(cfg['cfg_version']) then
    current = tonumber(cfg['cfg_version'])
  end
end
if ARGV[6] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[6]) == 1 then
  return {2, current}
end
local new = tonumber(ARGV[5])
if ARGV[2] == 'newer' then
  if new <= current then return {4, current} end
elseif current ~= tonumber(ARGV[3]) then
  return {0, current}
end
if ARGV[4] ~= '' then
  if new <= current then return {0, current} end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  current = new
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[6], ARGV[7])
end
if ARGV[4] == '' then return {3, current} end
return {1, current}
"""

_CODES: dict[int, Outcome] = {1: "written", 2: "already_applied", 3: "unchanged", 4: "stale"}


class ConfigConflictError(RuntimeError):
    """``cfg:{agent}`` kept changing under a read-decide-write cycle (:data:`MAX_ATTEMPTS`)."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    config: AgentConfig
    """The config as this write left it (the stored one when nothing was written)."""

    @property
    def written(self) -> bool:
        return self.outcome == "written"


def decode_config(raw: object) -> AgentConfig:
    """A ``cfg:{agent}`` value; the defaults when it is missing or unreadable."""
    if not isinstance(raw, bytes):
        return AgentConfig()
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("unreadable agent config; using the defaults", extra={"error": str(exc)})
        return AgentConfig()


def encode_config(config: AgentConfig) -> bytes:
    return _ENCODER.encode(config)


def cause_field(cause: str) -> str:
    """The hash field remembering that ``cause`` (a derived id) was applied."""
    return f"{CAUSE_PREFIX}{cause}"


Change = Callable[[AgentConfig], AgentConfig | None]


class AgentState:
    """Reads and writes ``cfg:{agent}``; every write goes through :data:`WRITE_LUA`."""

    def __init__(self, redis: Redis, prefix: str, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_attempts = max_attempts
        self._script = redis.register_script(WRITE_LUA)

    def key(self, agent: str) -> str:
        return cfg_key(self._prefix, agent)

    async def read(self, agent: str) -> AgentConfig:
        return decode_config(await self._redis.hget(self.key(agent), CFG_FIELD))

    async def applied(self, agent: str, cause: str) -> bool:
        """Whether ``cause`` was applied to the agent's config."""
        return bool(await self._redis.hexists(self.key(agent), cause_field(cause)))

    async def _run(
        self,
        agent: str,
        *,
        mode: str,
        expected: int,
        new: AgentConfig | None,
        cause: str | None,
        note: str,
    ) -> tuple[int, int]:
        result: Any = await self._script(
            keys=[self.key(agent)],
            args=[
                CFG_FIELD,
                mode,
                expected,
                encode_config(new) if new is not None else b"",
                new.cfg_version if new is not None else 0,
                cause_field(cause) if cause else "",
                note,
            ],
        )
        return int(result[0]), int(result[1])

    async def update(
        self, agent: str, change: Change, *, cause: str | None = None, note: str = ""
    ) -> WriteResult:
        """Read, let ``change`` decide (None: nothing to change), write with ``cfg_version + 1``
        if the version is still the one read; retried on a concurrent change. ``cause`` makes
        the update idempotent: once applied (or seen while there was nothing to change) it is
        never applied again."""
        for _ in range(self._max_attempts):
            current = await self.read(agent)
            wanted = change(current)
            new = None
            if wanted is not None:
                new = msgspec.structs.replace(wanted, cfg_version=current.cfg_version + 1)
            code, _ = await self._run(
                agent, mode="cas", expected=current.cfg_version, new=new, cause=cause, note=note
            )
            if code == 0:
                continue
            if code == 1 and new is not None:
                return WriteResult("written", new)
            return WriteResult(_CODES[code], current)
        raise ConfigConflictError(f"cfg:{{{agent}}} changed {self._max_attempts} times in a row")

    async def contain(
        self,
        agent: str,
        reason: str,
        *,
        cause: str | None = None,
        status: ContainmentStatus = "paused",
    ) -> WriteResult:
        """Contain an active agent (``paused`` or ``killed``). Already contained: unchanged.
        ``cause`` (e.g. the containment's derived id) is applied at most once."""

        def change(config: AgentConfig) -> AgentConfig | None:
            if config.containment != "active":
                return None
            return msgspec.structs.replace(config, containment=status)

        result = await self.update(agent, change, cause=cause, note=reason[:500])
        if result.written:
            log.info(
                "agent contained",
                extra={"agent_id": agent, "containment": status, "reason": reason[:200]},
            )
        return result

    async def resume(self, agent: str) -> WriteResult:
        """Make a contained agent active again (``cfg_version + 1``); active: unchanged."""

        def change(config: AgentConfig) -> AgentConfig | None:
            if config.containment == "active":
                return None
            return msgspec.structs.replace(config, containment="active")

        return await self.update(agent, change)

    async def put(self, agent: str, config: AgentConfig) -> WriteResult:
        """Write ``config`` as a whole when its ``cfg_version`` is newer than the stored one
        (write-through from the system of record); otherwise ``stale`` and nothing changes."""
        code, _ = await self._run(agent, mode="newer", expected=0, new=config, cause=None, note="")
        if code == 1:
            return WriteResult("written", config)
        return WriteResult(_CODES.get(code, "stale"), await self.read(agent))
