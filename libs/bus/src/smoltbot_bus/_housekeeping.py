"""Housekeeping (architecture §3.2): the chores of a consumer group that handle no entry, run as
their own task beside the consume loop, so a slow trim never delays a read and a held batch
never delays the group heartbeat.

* every ``claim_interval_s``: the group heartbeat and the lag / pending / oldest-age gauges;
* every ``housekeeping_interval_s``: retention trimming of the consumed streams (under byte
  pressure, everything acked may go), expiry of their dead letters and removal of long-idle
  consumers that hold nothing pending.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError
from smoltbot_resilience import sleep_or_stop

from smoltbot_bus._dlq import expire_dead_letters
from smoltbot_bus._entries import Member
from smoltbot_bus._heartbeat import Heartbeat
from smoltbot_bus._streams import Retention, export_lag, remove_idle_consumers, trim_stream

log = logging.getLogger(__name__)


class Housekeeper:
    """Housekeeping for the streams one consumer reads."""

    def __init__(self, member: Member, heartbeat: Heartbeat) -> None:
        self._member = member
        self._heartbeat = heartbeat

    async def run(self, stop: asyncio.Event) -> None:
        """Do the chores on their intervals until ``stop``; a Redis error skips one round."""
        config = self._member.config
        next_cleanup = 0.0
        while not stop.is_set():
            try:
                await self.export_lag()
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + config.housekeeping_interval_s
                    await self.clean_up()
            except (RedisError, OSError) as exc:
                log.warning("housekeeping failed; retrying", extra={"error": str(exc)[:200]})
            if await sleep_or_stop(config.claim_interval_s, stop):
                return

    async def run_once(self) -> None:
        """Every chore once, now."""
        await self.export_lag()
        await self.clean_up()

    async def export_lag(self) -> None:
        """The group heartbeat, then the gauges."""
        await self._heartbeat.beat_groups()
        m = self._member
        for stream in m.config.streams:
            await export_lag(m.redis, m.key(stream), stream, m.group)

    async def clean_up(self) -> None:
        """Trim the consumed streams and their dead letters; drop long-idle consumers."""
        m, cfg = self._member, self._member.config
        retention = Retention(cfg.retention_s, cfg.body_retention_s, cfg.max_bytes)
        pressure = await retention.under_pressure(m.redis, m.prefix)
        for stream in cfg.streams:
            await trim_stream(
                m.redis,
                m.prefix,
                stream,
                retention_ms=retention.retention_ms(stream),
                under_pressure=pressure,
            )
            await expire_dead_letters(m.redis, m.prefix, stream, cfg.dlq_retention_s)
            await remove_idle_consumers(
                m.redis, m.key(stream), m.group, me=m.name, idle_after_ms=cfg.stale_group_s * 1000
            )
