"""The provider proxy hot path (architecture §5), in raw ASGI for control over streaming.

Order per call: key and identity -> agent config (bounded) -> body within the gateway's
bounds, read once -> forward -> relay bytes as they arrive (never decompressed) -> record one
``exchange.v1`` after the last byte, also when the client went away mid-stream. An agent is
provisioned (``agent.v1``) only once the provider accepted its key; a key the provider rejects
before any call of it was accepted leaves no trace but a counter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, get_args

from litestar.types import Receive, Send
from smoltbot_contracts import AgentConfig, AgentV1, ContainmentStatus, ExchangeMeta, ExchangeV1
from smoltbot_contracts.ids import checkpoint_id, uuid7
from smoltbot_contracts.streams import AGENTS, EXCHANGES
from smoltbot_logging import bind_event
from smoltbot_web import ErrorReply

from smoltbot_gateway import enforce, metrics
from smoltbot_gateway.admission import (
    BodyTimeoutError,
    BodyTooLargeError,
    OverBudgetError,
    discard_body,
    read_body,
)
from smoltbot_gateway.body import BodyInfo, inspect_body
from smoltbot_gateway.errors import UpstreamError
from smoltbot_gateway.headers import (
    CORS_RESPONSE_HEADERS,
    client_response_headers,
    header_value,
    upstream_request_headers,
)
from smoltbot_gateway.identity import Identity, identify
from smoltbot_gateway.injection import prepare_upstream
from smoltbot_gateway.nudges import NudgeClaim, claim_for
from smoltbot_gateway.providers import PROVIDERS, WIRES, Provider, key_sources
from smoltbot_gateway.routing import Target
from smoltbot_gateway.state import GatewayState

log = logging.getLogger(__name__)

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_MAX_KNOWN_AGENTS = 100_000
_REJECTED_KEY_STATUSES = frozenset({401, 403})
_RETRY_AFTER = (b"retry-after", b"1")
_WATCH_AFTER_S = 0.2

# Refusals whose bytes never change, encoded once at import, per provider.
_MISSING_KEY = {
    p: WIRES[p].error("authentication_error", f"Missing {WIRES[p].key_header} header")
    for p in PROVIDERS
}
_CONTAINED = {
    (p, status): WIRES[p].error("containment_error", "Agent contained", reason=f"agent_{status}")
    for p in PROVIDERS
    for status in get_args(ContainmentStatus)
    if status != "active"
}
_OVER_BUDGET = {
    p: WIRES[p].error(
        "service_unavailable", "The gateway is at its limit of request bodies in flight; retry"
    )
    for p in PROVIDERS
}


async def refuse(
    provider: Provider,
    reason: str,
    reply: ErrorReply,
    send: Send,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer before anything went upstream (no exchange is recorded), counted by reason."""
    metrics.REQUESTS.labels(provider, str(reply.status)).inc()
    metrics.REFUSALS.labels(reason).inc()
    await reply.send(send, [*CORS_RESPONSE_HEADERS, *(headers or ())])


_SERIES: dict[tuple[str, int, bool], tuple[Any, Any, Any]] = {}


def _record_metrics(
    provider: str, status: int, streamed: bool, total_s: float, overhead_s: float
) -> None:
    """One call's three series; the labelled children are looked up once per label set."""
    key = (provider, status, streamed)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            metrics.REQUESTS.labels(provider, str(status)),
            metrics.REQUEST_DURATION.labels(provider),
            metrics.OVERHEAD.labels(provider, "true" if streamed else "false"),
        )
    requests, duration, overhead = series
    requests.inc()
    duration.observe(total_s)
    overhead.observe(overhead_s)


class _ClientGoneError(Exception):
    """Sending to the client failed: it disconnected."""


async def _to_client(send: Send, message: Any) -> None:
    try:
        await send(message)
    except Exception as exc:  # servers differ in what they raise for a vanished client
        raise _ClientGoneError(type(exc).__name__) from exc


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _gemini_model(path: str) -> str | None:
    """Gemini names the model in the URL: ``/v1beta/models/<model>:generateContent``."""
    _, found, rest = path.partition("/models/")
    if not found:
        return None
    return rest.split(":", 1)[0].split("/", 1)[0] or None


class _Call:
    """One proxied call: what it is, and its timings and outcome as they come in."""

    __slots__ = (
        "captured",
        "client_gone",
        "config",
        "content_encoding",
        "content_type",
        "event_id",
        "exchange",
        "first_sent",
        "ident",
        "info",
        "method",
        "model",
        "nudge_ids",
        "path",
        "provider",
        "reserved",
        "started_at",
        "status",
        "streamed",
        "t0",
        "t_first_chunk",
        "t_up_end",
        "t_up_start",
        "target",
        "truncated",
        "waits",
    )

    def __init__(
        self, target: Target, method: str, event_id: str, ident: Identity, started_at: datetime
    ) -> None:
        self.t0 = time.perf_counter()
        self.started_at = started_at
        self.target = target
        self.provider: Provider = target.provider
        self.path = target.path
        self.method = method
        self.event_id = event_id
        self.ident = ident
        self.config = AgentConfig()
        self.info = BodyInfo()
        self.model: str | None = None
        self.nudge_ids: list[str] = []
        self.reserved = 0
        self.streamed = False
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
        # Enforce mode / inline verdicts (architecture §3.3): the answer waits for its verdict,
        # and the exchange is published on the priority lane instead of enqueued.
        self.waits = False
        self.exchange: ExchangeV1 | None = None


class Proxy:
    """One instance per app; :meth:`handle` is called per provider request."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def handle(self, target: Target, scope: Any, receive: Receive, send: Send) -> None:
        event_id = uuid7()
        # Wave 3 (architecture §4): a call that can carry nudges claims them with its config
        # read; whatever it claimed but did not forward is given back when it ends.
        claim = claim_for(target.provider, scope["method"], target.path, event_id)
        with bind_event(event_id):
            try:
                await self._handle(target, event_id, scope, receive, send, claim=claim)
            finally:
                if claim is not None:
                    self.state.config.nudges.settle(claim)

    async def _handle(
        self,
        target: Target,
        event_id: str,
        scope: Any,
        receive: Receive,
        send: Send,
        *,
        claim: NudgeClaim | None = None,
    ) -> None:
        provider = target.provider
        wire = WIRES[provider]
        request_headers: list[tuple[bytes, bytes]] = scope["headers"]
        query: bytes = scope.get("query_string", b"")
        key = wire.key(key_sources(request_headers, query))
        if key is None:
            await refuse(provider, "missing_key", _MISSING_KEY[provider], send)
            return
        started_at = datetime.now(UTC)
        ident = identify(key, started_at, target.agent_name)
        del key  # nothing below may see it
        call = _Call(target, scope["method"], event_id, ident, started_at)
        id_headers = [
            *CORS_RESPONSE_HEADERS,
            (b"x-smoltbot-agent", ident.agent_id.encode()),
            (b"x-smoltbot-session", ident.session_id.encode()),
            (b"x-smoltbot-event-id", event_id.encode()),
            (b"x-aip-checkpoint-id", checkpoint_id(event_id).encode()),
        ]
        call.config = await self.state.config.get_for_call(ident.agent_id, claim)
        if call.config.containment != "active":
            reply = _CONTAINED[(provider, call.config.containment)]
            await refuse(provider, "contained", reply, send, id_headers)
            return
        settings = self.state.settings
        try:
            body, call.reserved = await read_body(
                receive,
                request_headers,
                max_bytes=settings.max_request_bytes,
                budget=self.state.body_budget,
                timeout_s=settings.body_timeout_s,
            )
        except ConnectionAbortedError:
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
            return
        except BodyTooLargeError as exc:
            reply = wire.error("request_too_large", str(exc))
            await refuse(provider, "too_large", reply, send, id_headers)
            return
        except BodyTimeoutError as exc:
            reply = wire.error("request_timeout", str(exc))
            await refuse(provider, "body_timeout", reply, send, id_headers)
            return
        except OverBudgetError:
            headers = [*id_headers, _RETRY_AFTER]
            await refuse(provider, "over_budget", _OVER_BUDGET[provider], send, headers)
            await discard_body(receive, settings.body_timeout_s)
            return
        call.info = inspect_body(body)
        call.model = call.info.model or (
            _gemini_model(target.path) if provider == "gemini" else None
        )
        call.streamed = wire.streams(target.path, query, call.info.stream)
        url = settings.upstream_url(provider) + target.path
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        # Waves 1 and 3 (architecture §5.3): the body is re-encoded only if something went in.
        prepared = prepare_upstream(
            provider,
            target.path,
            body,
            call.info,
            model=call.model,
            config=call.config,
            claim=claim,
        )
        if prepared.nudge_ids:
            call.nudge_ids = list(prepared.nudge_ids)
            id_headers.extend(prepared.headers)
        out_body: bytes | bytearray | None = prepared.body
        if call.method in _BODYLESS_METHODS and not out_body:
            out_body = None
        del body
        try:
            await self._forward(
                call,
                url=url,
                request_headers=request_headers,
                out_body=out_body,
                id_headers=id_headers,
                receive=receive,
                send=send,
            )
        finally:
            self._release_body(call)

    def _release_body(self, call: _Call) -> None:
        """The body is no longer held: give its bytes back to the budget (once)."""
        self.state.body_budget.release(call.reserved)
        call.reserved = 0

    async def _forward(
        self,
        call: _Call,
        *,
        url: str,
        request_headers: list[tuple[bytes, bytes]],
        out_body: bytes | bytearray | None,
        id_headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        # Watch for a client disconnect from here on: a non-streaming call sends no byte until
        # the model has finished, and an abandoned call must not keep a paid generation running.
        # The watcher starts only once the call has taken a moment: most answers come sooner,
        # and a task per call is a measurable share of the gateway's own cost.
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        watchers: list[asyncio.Task[None]] = []

        def watch() -> None:
            watchers.append(loop.create_task(self._watch_disconnect(receive, call, task)))

        timer = loop.call_later(_WATCH_AFTER_S, watch)
        call.waits = self.state.verdicts is not None and enforce.waits_for_verdict(
            call.config, self.state.settings, streamed=call.streamed, method=call.method
        )
        try:
            call.t_up_start = time.perf_counter()
            try:
                response = await self.state.upstreams[call.provider].send(
                    call.method, url, upstream_request_headers(request_headers), out_body
                )
            except UpstreamError as exc:
                call.t_up_end = time.perf_counter()
                call.status = exc.status_code
                log.warning(
                    "upstream unavailable", extra={"provider": call.provider, "error": str(exc)}
                )
                try:
                    reply = WIRES[call.provider].error(exc.error_type, exc.message)
                    await reply.send(send, [*id_headers, (b"x-aip-verdict", b"skipped")])
                except Exception:  # noqa: BLE001 - the client left; the exchange is still recorded
                    call.client_gone = True
                finally:
                    self._finish(call)
                return
            except asyncio.CancelledError:
                if not call.client_gone:
                    raise  # shutdown, not a disconnect
                if task is not None:
                    task.uncancel()
                call.t_up_end = time.perf_counter()
                metrics.CLIENT_DISCONNECTS.labels(call.provider).inc()
                self._finish(call)
                return
            # The upstream has the body now: its memory no longer counts against the budget.
            self._release_body(call)
            if call.waits and 200 <= response.status < 300:
                try:
                    await self._answer_with_verdict(response, id_headers, call, send)
                finally:
                    await response.aclose()
                return
            call.waits = False
            try:
                await self._relay(response, id_headers, call, send)
            finally:
                try:
                    # Record first: it is synchronous, so a late cancellation cannot skip it.
                    self._finish(call)
                finally:
                    await response.aclose()
        finally:
            timer.cancel()
            for watcher in watchers:
                watcher.cancel()

    async def _relay(
        self, response: Any, id_headers: list[tuple[bytes, bytes]], call: _Call, send: Send
    ) -> None:
        """Copy status, headers and body chunks to the client as they arrive (the caller's
        disconnect watcher cancels this task when the client goes away)."""
        call.status = response.status
        call.content_encoding = header_value(response.headers, b"content-encoding")
        call.content_type = header_value(response.headers, b"content-type")
        verdict = enforce.immediate_verdict(call.config, response.status)
        headers = client_response_headers(response.headers, id_headers)
        headers.append((b"x-aip-verdict", verdict))
        cap = self.state.settings.max_captured_bytes
        # With a known length the last chunk ends the response itself (one send fewer).
        length = header_value(response.headers, b"content-length")
        remaining = int(length) if length is not None and length.isdigit() else -1
        task = asyncio.current_task()
        try:
            await _to_client(
                send, {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            more = True
            async for chunk in response.iter_raw():
                if call.t_first_chunk is None:
                    call.t_first_chunk = time.perf_counter()
                room = cap - len(call.captured)
                if room > 0:
                    call.captured.extend(chunk[:room])
                if len(chunk) > room:
                    call.truncated = True
                if remaining > 0:
                    remaining -= len(chunk)
                    more = remaining > 0
                await _to_client(
                    send, {"type": "http.response.body", "body": chunk, "more_body": more}
                )
                if call.first_sent is None:
                    call.first_sent = time.perf_counter()
            call.t_up_end = time.perf_counter()
            if more:
                await _to_client(
                    send, {"type": "http.response.body", "body": b"", "more_body": False}
                )
        except asyncio.CancelledError:
            if not call.client_gone:
                raise  # shutdown, not a disconnect: propagate after the finally blocks
            if task is not None:
                task.uncancel()
            self._client_left(call)
        except _ClientGoneError:
            call.client_gone = True
            self._client_left(call)
        except UpstreamError as exc:
            # Headers are out already: end without completing the body, so the server aborts
            # the response and the client sees a broken transfer, never a silently short one.
            # The exchange is marked truncated so the observer knows the bytes are partial.
            call.truncated = True
            log.warning("upstream broke mid-response", extra={"error": str(exc)})
        finally:
            if call.t_up_end is None:
                call.t_up_end = time.perf_counter()

    async def _answer_with_verdict(
        self, response: Any, id_headers: list[tuple[bytes, bytes]], call: _Call, send: Send
    ) -> None:
        """A waiting call (architecture §3.3): the relay fills a held response instead of the
        client's, the exchange goes to the priority lane, and the client gets the answer with
        its verdict, or the 403. The wait is left out of ``gateway_overhead_seconds`` (it has
        its own histogram)."""
        held = enforce.HeldResponse()
        await self._relay(response, id_headers, call, held.send)
        provider = call.provider
        gone = call.client_gone
        if gone or not held.complete:
            # Nothing left to wait for; recorded the ordinary way: 499, or 502 when the upstream
            # broke off mid-answer (the client never saw a byte of it).
            call.waits = False
            if not gone:
                call.status = 502
            self._finish(call)
            if not gone:
                reply = WIRES[provider].error("upstream_error", "The provider's answer broke off")
                try:
                    await reply.send(send, [*id_headers, (b"x-aip-verdict", b"skipped")])
                except Exception:  # noqa: BLE001 - the client left meanwhile
                    metrics.CLIENT_DISCONNECTS.labels(provider).inc()
            return
        self._finish(call)  # provisions the agent and leaves the exchange on the call
        verdicts, exchange = self.state.verdicts, call.exchange
        if verdicts is None or exchange is None:  # _forward and _record set both
            raise RuntimeError("a waiting call without a verdict waiter or an exchange")
        task = asyncio.current_task()
        status = held.status
        wait_started = time.perf_counter()
        wait_s: float | None = None
        try:
            outcome = await verdicts.check(exchange)
            wait_s = outcome.seconds
            decision = enforce.decide(outcome, call.config, self.state.settings, provider)
            if decision.block is not None:
                status = decision.block.status
                await decision.block.send(send, [*id_headers, *decision.headers])
            else:
                await _to_client(send, held.start(decision.headers))
                body = bytes(held.body)
                await _to_client(
                    send, {"type": "http.response.body", "body": body, "more_body": False}
                )
        except asyncio.CancelledError:
            if not call.client_gone:
                raise  # shutdown, not a disconnect
            if task is not None:
                task.uncancel()
            status = 499
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
        except Exception:  # noqa: BLE001 - servers differ in what they raise for a vanished client
            status = 499
            metrics.CLIENT_DISCONNECTS.labels(provider).inc()
        end = time.perf_counter()
        if wait_s is None:
            wait_s = end - wait_started
        total_s = end - call.t0
        up_end = call.t_up_end if call.t_up_end is not None else end
        overhead = total_s - max(0.0, up_end - call.t_up_start) - wait_s
        _record_metrics(provider, status, False, total_s, max(0.0, overhead))

    @staticmethod
    def _client_left(call: _Call) -> None:
        """The client went away mid-answer: the upstream call is abandoned (its connection is
        closed, not returned to the pool) and the bytes recorded so far are partial."""
        metrics.CLIENT_DISCONNECTS.labels(call.provider).inc()
        if call.t_up_end is None:
            call.truncated = True

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

    def _provision(self, call: _Call) -> None:
        """Enqueue ``agent.v1`` the first time this process sees the provider accept the key."""
        known = self.state.seen_agents
        ident = call.ident
        if ident.agent_id in known:
            return
        event = AgentV1(
            event_id=uuid7(),
            agent_id=ident.agent_id,
            agent_hash=ident.agent_hash,
            name=call.target.agent_name,
            seen_at=call.started_at,
        )
        if self.state.events.enqueue(AGENTS, event):
            if len(known) >= _MAX_KNOWN_AGENTS:
                known.clear()
            known.add(ident.agent_id)
        else:
            metrics.EVENTS_DROPPED.labels(AGENTS).inc()

    def _finish(self, call: _Call) -> None:
        """Record metrics and the exchange (never raises into the request)."""
        end = time.perf_counter()
        up_end = call.t_up_end if call.t_up_end is not None else end
        upstream_s = max(0.0, up_end - call.t_up_start)
        total_s = end - call.t0
        ttfb_s = None if call.t_first_chunk is None else call.t_first_chunk - call.t_up_start
        if call.streamed and call.first_sent is not None and ttfb_s is not None:
            overhead = (call.first_sent - call.t0) - ttfb_s
        else:
            overhead = total_s - upstream_s
        status = 499 if call.client_gone else call.status
        provider = call.provider
        if not call.waits:  # a waiting call is counted once answered (_answer_with_verdict)
            _record_metrics(provider, status, call.streamed, total_s, max(0.0, overhead))
        if 200 <= status < 300:
            self._provision(call)
        elif status in _REJECTED_KEY_STATUSES and call.ident.agent_id not in self.state.seen_agents:
            # Most likely a made-up or revoked key: provisioning it would let anyone create
            # agent rows and cards by sending random keys.
            metrics.UNKNOWN_KEYS_REJECTED.labels(provider).inc()
            log.info(
                "provider rejected a key no accepted call has used; nothing recorded",
                extra={"provider": provider, "agent_id": call.ident.agent_id, "status": status},
            )
            return
        self._record(call, status, upstream_s, total_s, ttfb_s)

    def _record(
        self, call: _Call, status: int, upstream_s: float, total_s: float, ttfb_s: float | None
    ) -> None:
        ident = call.ident
        meta = ExchangeMeta(
            exchange_id=call.event_id,
            agent_id=ident.agent_id,
            agent_hash=ident.agent_hash,
            session_id=ident.session_id,
            provider=call.provider,
            model=call.model,
            method=call.method,
            path=call.path,
            status=status,
            streamed=call.streamed,
            started_at=call.started_at,
            completed_at=datetime.now(UTC),
            upstream_ms=_ms(upstream_s),
            total_ms=_ms(total_s),
            ttfb_ms=None if ttfb_s is None else _ms(ttfb_s),
            gateway_instance=self.state.instance,
            agent_name=call.target.agent_name,
        )
        exchange = ExchangeV1(
            event_id=call.event_id,
            meta=meta,
            user_query=call.info.user_query,
            response_body=bytes(call.captured),
            response_truncated=call.truncated,
            content_encoding=call.content_encoding,
            content_type=call.content_type,
            nudge_ids=call.nudge_ids,
            enforcement_mode=call.config.enforcement_mode,
        )
        if call.waits:  # published on the priority lane by _answer_with_verdict (§3.3)
            call.exchange = exchange
            return
        if not self.state.events.enqueue(EXCHANGES, exchange):
            metrics.EVENTS_DROPPED.labels(EXCHANGES).inc()
