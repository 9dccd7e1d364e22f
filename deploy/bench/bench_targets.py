"""The static upstream (nginx) and the targets put in front of it, each as a context manager.

Every target is started as its own process tree (its pid is what CPU is read from), waited for
until ready, checked with one JSON and one streamed call (the answer must be the upstream's
bytes), and stopped with SIGTERM (SIGKILL after 20 s) when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench_install import Tool
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.net import free_port

MODEL = "claude-sonnet-4-20250514"
REQUEST = {
    "model": MODEL,
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "benchmark: answer briefly"}],
}
STREAM_REQUEST = {**REQUEST, "stream": True}
CLIENT_HEADERS = {
    "content-type": "application/json",
    "x-api-key": "sk-ant-bench-0000",
    "anthropic-version": "2023-06-01",
    "accept-encoding": "identity",
}
MESSAGE_ID = "msg_01BenchStaticUpstream00001"
SSE_EVENTS = 20
_TEXT = (
    "This is a fixed answer from the static benchmark upstream. It is long enough to make the "
    "body about six hundred bytes, like a short real reply from the Messages API, and it never "
    "changes between calls, so every target relays exactly the same bytes to the load generator."
)


class UnavailableError(Exception):
    """The target cannot run here; the message says why (shown in the report)."""


# The enforce-mode round trip's upstream also thinks, so the verifier really analyses (the rules
# analyzer skips thinking under 25 estimated tokens) and finds nothing: verdict clear.
THINKING = (
    "The user wants a brief answer for a benchmark. I will read the question, check what is "
    "asked, and reply in one short paragraph with no claims I cannot support."
)


def message_json(thinking: str | None = None) -> bytes:
    """A non-streamed Anthropic Messages answer (~600 bytes; a thinking block first if given)."""
    content: list[dict[str, str]] = [{"type": "text", "text": _TEXT}]
    if thinking is not None:
        content.insert(0, {"type": "thinking", "thinking": thinking, "signature": "benchsig"})
    body = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 14,
            "output_tokens": 62,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _event(name: str, data: dict[str, object]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def sse_body() -> bytes:
    """A streamed answer: 20 Anthropic stream events (start, block start, ping, 14 deltas, block
    stop, message delta, message stop)."""
    words = _TEXT.split(" ")
    deltas = SSE_EVENTS - 6
    per = -(-len(words) // deltas)
    start = {
        "type": "message_start",
        "message": {
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 14, "output_tokens": 1},
        },
    }
    events = [
        _event("message_start", start),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _event("ping", {"type": "ping"}),
    ]
    for i in range(deltas):
        text = " ".join(words[i * per : (i + 1) * per]) + ("" if i == deltas - 1 else " ")
        delta = {"type": "text_delta", "text": text}
        events.append(
            _event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        )
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 62},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    assert len(events) == SSE_EVENTS
    return "".join(events).encode()


def count_events(body: bytes) -> int:
    return sum(1 for line in body.split(b"\n") if line.startswith(b"event:"))


# ---------------------------------------------------------------------------------------------
# CPU of a process tree, from /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """utime+stime (plus cutime+cstime, so reaped children still count) over ``root``'s tree."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:  # fields[11:15] = utime stime cutime cstime
            total += sum(int(v) for v in fields[11:15])
    return total / ticks


def find_process(comm: str) -> int | None:
    """The pid of the first process whose name is ``comm`` (e.g. the shared redis-server)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "comm").read_text().strip() == comm:
                    return int(entry.name)
            except OSError:
                continue
    return None


# ---------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    label: str
    url: str  # non-streamed POST
    stream_url: str  # streamed POST (the upstream answers SSE there)
    pid: int  # root of the process tree whose CPU is counted
    version: str
    mode: str  # how it is configured, for the report
    headers: dict[str, str] = field(default_factory=dict)  # added to CLIENT_HEADERS
    stream_headers: dict[str, str] | None = None  # for the streamed case, if not ``headers``
    helper_pids: list[int] = field(default_factory=list)  # more processes its CPU counts

    def request_headers(self, *, stream: bool) -> dict[str, str]:
        extra = self.stream_headers if stream and self.stream_headers is not None else self.headers
        return {**CLIENT_HEADERS, **extra}


def _http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    method = "POST" if body is not None else "GET"
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http, loopback)
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Poll ``url`` (GET, any status < 500) until it answers; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UnavailableError(
                f"exited with {proc.returncode} while starting: {_log_tail(log)}"
            )
        try:
            status, _, _ = _http(url, timeout=2)
            if status < 500:
                return
            last = f"status {status}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise UnavailableError(f"not ready after {timeout_s:.0f}s ({last}): {_log_tail(log)}")


def _log_tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return " | ".join(lines[-3:])[-400:] if lines else "empty log"


def check_target(target: Target) -> None:
    """One JSON and one streamed call; raise UnavailableError unless both carry the upstream's
    answer (same message id, 20 stream events)."""
    headers = target.request_headers(stream=False)
    status, _, body = _http(target.url, json.dumps(REQUEST).encode(), headers)
    if status != 200 or MESSAGE_ID.encode() not in body:
        raise UnavailableError(f"JSON check failed: status {status}, body {body[:300]!r}")
    headers = target.request_headers(stream=True)
    body_bytes = json.dumps(STREAM_REQUEST).encode()
    status, resp_headers, body = _http(target.stream_url, body_bytes, headers)
    events = count_events(body)
    if status != 200 or events != SSE_EVENTS:
        raise UnavailableError(
            f"stream check failed: status {status}, {events} events, "
            f"content-type {resp_headers.get('content-type')}, body {body[:300]!r}"
        )


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, up to ``timeout_s`` to exit, then SIGKILL to what is left of its session (each
    target is started in a session of its own, so that is its workers and nothing else)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


@contextmanager
def _process(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def _nginx_string(body: bytes) -> str:
    text = body.decode()
    assert not any(c in text for c in "'\\$"), "body must not need escaping in nginx.conf"
    return text.replace("\n", "\\n")


def nginx_conf(tmp: Path, port: int) -> str:
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(exist_ok=True)
    error_json = '{"type":"error","error":{"type":"not_found_error","message":"bench: no route"}}'
    return f"""# smoltbot bench: static Anthropic upstream (generated)
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /__status {{ stub_status; }}
        # streamed: /sse/... path, or ?stream=1 on the plain path (rewritten here)
        location ~ ^/sse(/anthropic)?/v1/messages$ {{
            default_type text/event-stream;
            add_header cache-control no-cache;
            # a no-op substitution drops Content-Length: sent chunked, like a provider's stream
            sub_filter_types text/event-stream;
            sub_filter_once on;
            sub_filter 'message_stop' 'message_stop';
            return 200 '{_nginx_string(sse_body())}';
        }}
        # the same answer with a thinking block (the enforce-mode round trip analyses it)
        location ~ ^/think(/anthropic)?/v1/messages$ {{
            default_type application/json;
            return 200 '{_nginx_string(message_json(THINKING))}';
        }}
        location ~ ^(/anthropic)?/v1/messages$ {{
            if ($arg_stream) {{ rewrite ^(.*)$ /sse$1 last; }}
            default_type application/json;
            return 200 '{_nginx_string(message_json())}';
        }}
        location / {{
            default_type application/json;
            return 404 '{error_json}';
        }}
    }}
}}
"""


@dataclass
class Upstream:
    base: str  # http://127.0.0.1:<port>
    pid: int

    def requests_served(self) -> int:
        """nginx's request counter (stub_status); each read counts itself, callers subtract 1."""
        _, _, body = _http(f"{self.base}/__status")
        return int(body.decode().splitlines()[2].split()[2])


@contextmanager
def nginx_upstream(nginx: Tool, tmp: Path) -> Iterator[Upstream]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port))
    cmd = [nginx.path, "-p", str(tmp), "-c", str(conf)]
    with _process(cmd, dict(os.environ), tmp / "nginx.log") as proc:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/__status", proc, tmp / "error.log", 15)
        yield Upstream(base, proc.pid)


def direct_target(upstream: Upstream, nginx: Tool) -> Target:
    return Target(
        name="direct",
        label="nginx direct",
        url=f"{upstream.base}/v1/messages",
        stream_url=f"{upstream.base}/v1/messages?stream=1",
        pid=upstream.pid,
        version=f"nginx {nginx.version}",
        mode="the static upstream called directly (baseline)",
    )


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus what would point a competitor at this project's databases."""
    drop = ("DATABASE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LITELLM_")}
    env.update(extra)
    return env


@contextmanager
def smoltbot_target(upstream: Upstream, tmp: Path, redis_url: str) -> Iterator[Target]:
    """``python -m smoltbot_gateway`` (granian, 1 worker) with tracing on: every call publishes
    its exchange to Redis under a unique stream prefix, deleted afterwards."""
    try:
        _check_redis(redis_url)
    except Exception as exc:  # any failure means: no usable Redis here
        raise UnavailableError(f"Redis at {redis_url} not reachable: {exc}") from exc
    from importlib.metadata import version as dist_version  # noqa: PLC0415

    prefix, port = unique_prefix().replace("test-", "bench-"), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "SMOLTBOT_GATEWAY_PORT": str(port),
        "SMOLTBOT_GATEWAY_HOST": "127.0.0.1",
        "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": upstream.base,
        "SMOLTBOT_SPOOL_DIR": str(tmp / "smoltbot-spool"),
        "LOG_LEVEL": "warning",
    }
    log = tmp / "smoltbot.log"
    try:
        with _process([sys.executable, "-m", "smoltbot_gateway"], env, log) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/health/ready", proc, log, 60)
            target = Target(
                name="smoltbot",
                label="smoltbot gateway",
                url=f"{base}/anthropic/v1/messages",
                stream_url=f"{base}/anthropic/v1/messages?stream=1",
                pid=proc.pid,
                version=f"smoltbot-gateway {dist_version('smoltbot-gateway')}",
                mode=(
                    "`python -m smoltbot_gateway` (granian, 1 worker), tracing on: each call "
                    "publishes its exchange.v1 to Redis under a unique `bench-*` stream prefix "
                    "(deleted afterwards)"
                ),
            )
            check_target(target)
            yield target
    finally:
        delete_prefix_sync(prefix, redis_url)


@contextmanager
def smoltbot_enforce_target(upstream: Upstream, tmp: Path, redis_url: str) -> Iterator[Target]:
    """The enforce-mode round trip: ``python -m smoltbot_gateway`` with the bench key's agent in
    ``enforce`` mode, plus one observer and one verifier process (``rules`` analyzer) under the
    same unique prefix. Every call waits for its verdict: gateway -> ``exchanges:priority`` ->
    observer -> ``traces:priority`` -> verifier -> ``replies:<instance>`` -> gateway. The
    upstream answers with a thinking block the verifier analyses (verdict clear)."""
    try:
        _check_redis(redis_url)
    except Exception as exc:  # any failure means: no usable Redis here
        raise UnavailableError(f"Redis at {redis_url} not reachable: {exc}") from exc
    import msgspec  # noqa: PLC0415
    import redis  # noqa: PLC0415
    from smoltbot_contracts import AgentConfig  # noqa: PLC0415
    from smoltbot_contracts.ids import agent_hash, agent_id  # noqa: PLC0415
    from smoltbot_contracts.streams import cfg_key  # noqa: PLC0415

    prefix = unique_prefix().replace("test-", "bench-")
    ports = {name: free_port() for name in ("gateway", "observer", "verifier")}
    common = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "LOG_LEVEL": "warning",
    }
    envs = {
        "observer": {
            **common,
            "SMOLTBOT_OBSERVER_PORT": str(ports["observer"]),
            "SMOLTBOT_OBSERVER_HOST": "127.0.0.1",
            "SMOLTBOT_CONSUMER_NAME": "bench-observer",
        },
        "verifier": {
            **common,
            "SMOLTBOT_VERIFIER_PORT": str(ports["verifier"]),
            "SMOLTBOT_VERIFIER_HOST": "127.0.0.1",
            "SMOLTBOT_CONSUMER_NAME": "bench-verifier",
            "SMOLTBOT_ANALYZER_BACKEND": "rules",
        },
        "gateway": {
            **common,
            "SMOLTBOT_GATEWAY_PORT": str(ports["gateway"]),
            "SMOLTBOT_GATEWAY_HOST": "127.0.0.1",
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": f"{upstream.base}/think",
            "SMOLTBOT_SPOOL_DIR": str(tmp / "smoltbot-enforce-spool"),
        },
    }
    store = redis.Redis.from_url(redis_url)
    try:
        agent = agent_id(agent_hash(CLIENT_HEADERS["x-api-key"]))
        config = AgentConfig(enforcement_mode="enforce")
        store.hset(cfg_key(prefix, agent), "b", msgspec.msgpack.encode(config))
    finally:
        store.close()
    try:
        with contextlib.ExitStack() as stack:
            procs = {
                name: stack.enter_context(
                    _process(
                        [sys.executable, "-m", f"smoltbot_{name}"],
                        envs[name],
                        tmp / f"smoltbot-enforce-{name}.log",
                    )
                )
                for name in ("observer", "verifier", "gateway")
            }
            for name, proc in procs.items():
                url = f"http://127.0.0.1:{ports[name]}/health/ready"
                wait_ready(url, proc, tmp / f"smoltbot-enforce-{name}.log", 60)
            base = f"http://127.0.0.1:{ports['gateway']}"
            target = Target(
                name="enforce",
                label="smoltbot, enforce mode",
                url=f"{base}/anthropic/v1/messages",
                stream_url=f"{base}/anthropic/v1/messages?stream=1",
                pid=procs["gateway"].pid,
                helper_pids=[procs["observer"].pid, procs["verifier"].pid],
                version="smoltbot gateway + observer + verifier",
                mode=(
                    "one gateway, one observer, one verifier process (`rules` analyzer), the "
                    "agent in `enforce` mode: each call waits for its verdict on the reply "
                    "stream (the upstream's answer carries a thinking block; verdict clear)"
                ),
            )
            status, headers, body = _http(
                target.url, json.dumps(REQUEST).encode(), target.request_headers(stream=False)
            )
            verdict = headers.get("x-aip-verdict")
            if status != 200 or MESSAGE_ID.encode() not in body or verdict != "clear":
                raise UnavailableError(
                    f"enforce check failed: status {status}, X-AIP-Verdict {verdict}, "
                    f"body {body[:200]!r}"
                )
            yield target
    finally:
        delete_prefix_sync(prefix, redis_url)


def _check_redis(url: str) -> None:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


LITELLM_CONFIG = """\
# smoltbot bench: LiteLLM proxy as a plain pass-through (generated)
model_list: []
litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  set_verbose: false
  turn_off_message_logging: true
  telemetry: false
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
  store_model_in_db: false
  background_health_checks: false
  # no master key = no auth step at all (the least work per call); LiteLLM refuses to start
  # without one unless told this is local use
  dangerously_permit_weak_or_unset_master_key: true
"""


@contextmanager
def litellm_target(upstream: Upstream, tool: Tool, tmp: Path) -> Iterator[Target]:
    """LiteLLM's proxy (uvicorn, 1 worker, no database, no callbacks) serving its Anthropic
    pass-through route ``/anthropic/{endpoint}`` with ``ANTHROPIC_API_BASE`` set to nginx."""
    if not tool.ok:
        raise UnavailableError(tool.reason)
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(LITELLM_CONFIG)
    env = _clean_env(
        ANTHROPIC_API_BASE=upstream.base,
        ANTHROPIC_API_KEY=CLIENT_HEADERS["x-api-key"],
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the price list at start
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        DISABLE_ADMIN_UI="True",
        NO_DOCS="True",
        PYTHONUNBUFFERED="1",
    )
    cmd = [tool.path, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", "1"]
    log = tmp / "litellm.log"
    with _process(cmd, env, log, cwd=tmp) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health/liveliness", proc, log, 180)
        target = Target(
            name="litellm",
            label="LiteLLM proxy",
            url=f"{base}/anthropic/v1/messages",
            stream_url=f"{base}/anthropic/v1/messages?stream=1",
            pid=proc.pid,
            version=f"litellm {tool.version}",
            mode=(
                "`litellm --config` (uvicorn, 1 worker, no database, callbacks off), Anthropic "
                "pass-through route `/anthropic/v1/messages` with ANTHROPIC_API_BASE=nginx"
            ),
        )
        check_target(target)
        yield target


@contextmanager
def portkey_target(upstream: Upstream, tool: Tool, tmp: Path) -> Iterator[Target]:
    """Portkey's gateway (node, one process) on ``/v1/messages`` with provider ``anthropic`` and
    ``x-portkey-custom-host`` pointing at nginx."""
    if not tool.ok:
        raise UnavailableError(tool.reason)
    port = free_port()
    env = _clean_env(NODE_ENV="production")
    cmd = ["node", tool.path, f"--port={port}", "--headless"]
    log = tmp / "portkey.log"
    with _process(cmd, env, log, cwd=tmp) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/", proc, log, 60)
        headers = {"x-portkey-provider": "anthropic"}
        target = Target(
            name="portkey",
            label="Portkey gateway",
            url=f"{base}/v1/messages",
            stream_url=f"{base}/v1/messages",
            pid=proc.pid,
            version=f"portkey {tool.version}",
            mode=(
                "`node build/start-server.js --headless` (1 process), `/v1/messages` with "
                "x-portkey-provider: anthropic and x-portkey-custom-host: nginx"
            ),
            headers={**headers, "x-portkey-custom-host": f"{upstream.base}/v1"},
            # Portkey builds the upstream URL itself: the streamed case gets its own path.
            stream_headers={**headers, "x-portkey-custom-host": f"{upstream.base}/sse/v1"},
        )
        check_target(target)
        yield target
