"""smoltbot gateway: proxies agent LLM calls (plus thinking and nudge injection, ``injection.py``)
and emits ``exchange.v1`` / ``agent.v1``.

Entry point: ``python -m smoltbot_gateway`` (granian, one worker). App factory:
:func:`smoltbot_gateway.app.create_app`.
"""
