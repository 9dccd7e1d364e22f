"""Live / ready / startup probes (architecture §2).

* startup: 200 once the service finished starting (dependencies reached at least once).
* ready: 200 while every registered dependency check passes and the service is not draining.
  Readiness never looks at lag.
* live: 200 unless a registered loop has not beaten for longer than its stuck limit; a wedged
  consume loop is the one thing a restart fixes.
"""

from smoltbot_health._state import Health, ProbeResult

__all__ = ["Health", "ProbeResult"]
