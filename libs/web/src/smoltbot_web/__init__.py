"""What the HTTP services (gateway, api) share, so their answers cannot drift apart.

Error answers come only from the catalogue in :mod:`smoltbot_contracts.errors`:

- :class:`ServiceError`: base of the exceptions a service raises on purpose;
- :func:`exception_handlers`: the one Litestar exception -> HTTP map builder;
- :class:`ErrorReply` / :func:`send_error`: the same bytes on a raw ASGI ``send``.
"""

from smoltbot_web._errors import ErrorReply, ServiceError, exception_handlers, send_error

__all__ = ["ErrorReply", "ServiceError", "exception_handlers", "send_error"]
