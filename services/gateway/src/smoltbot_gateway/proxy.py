"""The provider proxy hot path (architecture §5), in raw ASGI for control over streaming.

Order per call: identify -> agent config (bounded) -> parse body once -> forward -> relay bytes
as they arrive (never decompressed) -> enqueue one ``exchange.v1`` after the last byte, also when
the client went away mid-stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast, get_args

from litestar.types import HTTPScope, Receive, Scope, Send
from smoltbot_contracts import AgentConfig, AgentV1, ContainmentStatus, ExchangeMeta, ExchangeV1
from smoltbot_contracts.ids import checkpoint_id, uuid7
from smoltbot_contracts.streams import AGENTS, EXCHANGES
from smoltbot_logging import bind_event
from smoltbot_web import ErrorReply, send_error

from smoltbot_gateway import metrics
from smoltbot_gateway.asgi_io import BodyTooLargeError, read_body
from smoltbot_gateway.body import BodyInfo, inspect_body, prepare_upstream_body
from smoltbot_gateway.errors import UpstreamError
from smoltbot_gateway.headers import client_response_headers, header_value, upstream_request_headers
from smoltbot_gateway.identity import MISSING_KEY_HEADER, Identity, Provider, extract_key, identify
from smoltbot_gateway.state import GatewayState
from smoltbot_gateway.upstream import UpstreamResponse

log = logging.getLogger(__name__)

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_MAX_SEEN_AGENTS = 100_000

# Refusals whose bytes never change, encoded once at import.
_MISSING_KEY = {
    provider: ErrorReply("authentication_error", f"Missing {header} header")
    for provider, header in MISSING_KEY_HEADER.items()
}
_CONTAINED = {
    status: ErrorReply("containment_error", "Agent contained", reason=f"agent_{status}")
    for status in get_args(ContainmentStatus)
    if status != "active"
}


def under_provider(scope: Scope, provider: str) -> bool:
    """True for ``/<provider>`` and ``/<provider>/...``; a mount also matches ``/<provider>x``."""
    raw: object = scope.get("raw_path")  # optional in ASGI, whatever the type stubs say
    if not isinstance(raw, bytes | bytearray):
        return True  # the server gave no raw path; the router's match is all we have
    prefix = f"/{provider}".encode()
    return raw == prefix or raw.startswith(prefix + b"/")


def upstream_path(scope: Scope, provider: str) -> str:
    """Request path after ``/<provider>``, as the client encoded it (``raw_path`` when given)."""
    raw: object = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else scope["path"]
    prefix = f"/{provider}"
    rest = path[len(prefix) :] if path.startswith(prefix) else path
    return rest if rest.startswith("/") or not rest else f"/{rest}"


async def _refuse(
    provider: Provider, reply: ErrorReply, send: Send, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer before anything went upstream (no exchange is recorded), counted like any call."""
    metrics.REQUESTS.labels(provider, str(reply.status)).inc()
    await reply.send(send, headers)


class _ClientGoneError(Exception):
    """Sending to the client failed: it disconnected."""


async def _to_client(send: Send, message: Any) -> None:
    try:
        await send(message)
    except Exception as exc:  # servers differ in what they raise for a vanished client
        raise _ClientGoneError(type(exc).__name__) from exc


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class _Call:
    """Timings and outcome of one proxied call, filled in as it progresses."""

    __slots__ = (
        "captured",
        "client_gone",
        "content_encoding",
        "content_type",
        "first_sent",
        "status",
        "t0",
        "t_first_chunk",
        "t_up_end",
        "t_up_start",
        "truncated",
    )

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.t_up_start = self.t0
        self.t_up_end: float | None = None
        self.t_first_chunk: float | None = None
        self.first_sent: float | None = None
        self.status = 0
        self.captured = bytearray()
        self.truncated = False
        self.client_gone = False
        self.content_encoding: str | None = None
        self.content_type: str | None = None


class Proxy:
    """One instance per app; ``handle`` is called per request for one provider."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def handle(self, provider: Provider, scope: Scope, receive: Receive, send: Send) -> None:
        event_id = uuid7()
        with bind_event(event_id):
            await self._handle(provider, event_id, scope, receive, send)

    async def _handle(
        self, provider: Provider, event_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        call = _Call()
        started_at = datetime.now(UTC)
        http_scope = cast("HTTPScope", scope)
        request_headers = list(http_scope["headers"])
        key = extract_key(provider, request_headers)
        if key is None:
            await _refuse(provider, _MISSING_KEY[provider], send)
            return
        ident = identify(key, started_at)
        del key  # nothing below may see it
        self._note_agent(ident, started_at)
        id_headers = [
            (b"x-smoltbot-agent", ident.agent_id.encode()),
            (b"x-smoltbot-session", ident.session_id.encode()),
            (b"x-smoltbot-event-id", event_id.encode()),
            (b"x-aip-checkpoint-id", checkpoint_id(event_id).encode()),
        ]
        config = await self.state.config.get(ident.agent_id)
        if config.containment != "active":
            await _refuse(provider, _CONTAINED[config.containment], send, id_headers)
            return
        try:
            body = await read_body(receive, self.state.settings.max_request_bytes)
        except ConnectionAbortedError:
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
            return
        except BodyTooLargeError as exc:
            await _refuse(provider, ErrorReply("request_too_large", str(exc)), send, id_headers)
            return
        info = inspect_body(body)
        method = http_scope["method"]
        path = upstream_path(scope, provider)
        query = http_scope.get("query_string", b"")
        url = self.state.settings.upstream_url(provider) + path
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        out_body = prepare_upstream_body(provider, body, info)
        forward_body = None if method in _BODYLESS_METHODS and not out_body else out_body

        def finish() -> None:
            self._finish(
                provider=provider,
                event_id=event_id,
                ident=ident,
                info=info,
                method=method,
                path=path,
                started_at=started_at,
                call=call,
                config=config,
            )

        # Watch for a client disconnect from here on: a non-streaming call sends no byte until
        # the model has finished, and an abandoned call must not keep a paid generation running.
        task = asyncio.current_task()
        watcher = asyncio.create_task(self._watch_disconnect(receive, call, task))
        try:
            call.t_up_start = time.perf_counter()
            try:
                response = await self.state.upstreams[provider].send(
                    method, url, upstream_request_headers(request_headers), forward_body
                )
            except UpstreamError as exc:
                call.t_up_end = time.perf_counter()
                call.status = exc.status_code
                log.warning("upstream unavailable", extra={"provider": provider, "error": str(exc)})
                try:
                    await send_error(
                        send,
                        exc.error_type,
                        exc.message,
                        [*id_headers, (b"x-aip-verdict", b"skipped")],
                    )
                except Exception:  # noqa: BLE001 - the client left; the exchange is still recorded
                    call.client_gone = True
                finally:
                    finish()
                return
            except asyncio.CancelledError:
                if not call.client_gone:
                    raise  # shutdown, not a disconnect
                if task is not None:
                    task.uncancel()
                call.t_up_end = time.perf_counter()
                call.status = 499
                metrics.CLIENT_DISCONNECTS.labels(provider).inc()
                finish()
                return
            try:
                await self._relay(
                    provider=provider,
                    response=response,
                    id_headers=id_headers,
                    call=call,
                    send=send,
                )
            finally:
                try:
                    # Enqueue first: it is synchronous, so a late cancellation cannot skip it.
                    finish()
                finally:
                    await response.aclose()
        finally:
            watcher.cancel()

    async def _relay(
        self,
        *,
        provider: str,
        response: UpstreamResponse,
        id_headers: list[tuple[bytes, bytes]],
        call: _Call,
        send: Send,
    ) -> None:
        """Copy status, headers and body chunks to the client as they arrive (the caller's
        disconnect watcher cancels this task when the client goes away)."""
        call.status = response.status
        call.content_encoding = header_value(response.headers, b"content-encoding")
        call.content_type = header_value(response.headers, b"content-type")
        verdict = b"pending" if 200 <= response.status < 300 else b"skipped"
        headers = client_response_headers(response.headers)
        headers.extend(id_headers)
        headers.append((b"x-aip-verdict", verdict))
        cap = self.state.settings.max_captured_bytes
        task = asyncio.current_task()
        try:
            await _to_client(
                send, {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            async for chunk in response.iter_raw():
                if call.t_first_chunk is None:
                    call.t_first_chunk = time.perf_counter()
                room = cap - len(call.captured)
                if room > 0:
                    call.captured.extend(chunk[:room])
                if len(chunk) > room:
                    call.truncated = True
                await _to_client(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                )
                if call.first_sent is None:
                    call.first_sent = time.perf_counter()
            call.t_up_end = time.perf_counter()
            await _to_client(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not call.client_gone:
                raise  # shutdown, not a disconnect: propagate after the finally blocks
            if task is not None:
                task.uncancel()
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
        except _ClientGoneError:
            call.client_gone = True
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
        except UpstreamError as exc:
            # Headers are out already: end without completing the body, so the server aborts
            # the response and the client sees a broken transfer, never a silently short one.
            # The exchange is marked truncated so the observer knows the bytes are partial.
            call.truncated = True
            log.warning("upstream broke mid-response", extra={"error": str(exc)})
        finally:
            if call.t_up_end is None:
                call.t_up_end = time.perf_counter()

    @staticmethod
    async def _watch_disconnect(
        receive: Receive, call: _Call, task: asyncio.Task[Any] | None
    ) -> None:
        """Cancel the relay when the client disconnects, even while the upstream is silent."""
        while True:
            message: Any = await receive()
            if message["type"] == "http.disconnect":
                call.client_gone = True
                if task is not None:
                    task.cancel()
                return

    def _note_agent(self, ident: Identity, seen_at: datetime) -> None:
        """Enqueue ``agent.v1`` on first sight in this process (the persister upserts)."""
        seen = self.state.seen_agents
        if ident.agent_id in seen:
            return
        event = AgentV1(
            event_id=uuid7(), agent_id=ident.agent_id, agent_hash=ident.agent_hash, seen_at=seen_at
        )
        if self.state.events.enqueue(AGENTS, event):
            if len(seen) >= _MAX_SEEN_AGENTS:
                seen.clear()
            seen.add(ident.agent_id)
        else:
            metrics.EVENTS_DROPPED.labels(AGENTS).inc()

    def _finish(
        self,
        *,
        provider: Provider,
        event_id: str,
        ident: Identity,
        info: BodyInfo,
        method: str,
        path: str,
        started_at: datetime,
        call: _Call,
        config: AgentConfig,
    ) -> None:
        """Record metrics and enqueue the exchange (never raises into the request)."""
        end = time.perf_counter()
        up_end = call.t_up_end if call.t_up_end is not None else end
        upstream_s = max(0.0, up_end - call.t_up_start)
        total_s = end - call.t0
        ttfb_s = None if call.t_first_chunk is None else call.t_first_chunk - call.t_up_start
        if info.stream and call.first_sent is not None and ttfb_s is not None:
            overhead = (call.first_sent - call.t0) - ttfb_s
        else:
            overhead = total_s - upstream_s
        status = 499 if call.client_gone else call.status
        metrics.REQUESTS.labels(provider, str(status)).inc()
        metrics.REQUEST_DURATION.labels(provider).observe(total_s)
        metrics.OVERHEAD.labels(provider, "true" if info.stream else "false").observe(
            max(0.0, overhead)
        )
        completed_at = datetime.now(UTC)
        meta = ExchangeMeta(
            exchange_id=event_id,
            agent_id=ident.agent_id,
            agent_hash=ident.agent_hash,
            session_id=ident.session_id,
            provider=provider,
            model=info.model,
            method=method,
            path=path,
            status=call.status,
            streamed=info.stream,
            started_at=started_at,
            completed_at=completed_at,
            upstream_ms=_ms(upstream_s),
            total_ms=_ms(total_s),
            ttfb_ms=None if ttfb_s is None else _ms(ttfb_s),
            gateway_instance=self.state.instance,
        )
        exchange = ExchangeV1(
            event_id=event_id,
            meta=meta,
            user_query=info.user_query,
            response_body=bytes(call.captured),
            response_truncated=call.truncated,
            content_encoding=call.content_encoding,
            content_type=call.content_type,
            enforcement_mode=config.enforcement_mode,
        )
        # Seam for the enforce-mode priority path (architecture §3.3): publish to EXCHANGES_PRIORITY
        # with reply_to and await the verdict instead of enqueueing.
        if not self.state.events.enqueue(EXCHANGES, exchange):
            metrics.EVENTS_DROPPED.labels(EXCHANGES).inc()
