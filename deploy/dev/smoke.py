"""`make smoke`: the newcomer's first run, automated.

Starts `make run FAKE=1` in the background exactly as a person would, makes one call with the
official anthropic SDK, waits for its AP-Trace and checkpoint to appear through the API, checks
that the exchange crossed the bus encrypted (`make run` creates an event key when none is
given), then stops the stack with Ctrl-C (SIGINT to the process group, as a terminal does) and
checks that every service stopped cleanly. Exits non-zero with the stack's log tail on any
failure. :func:`one_traced_call` is also what `make test-deploy` checks the containers with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import anthropic
import httpx
import redis

GATEWAY = "http://127.0.0.1:8787"
API = "http://127.0.0.1:8788"
TOKEN = os.environ.get("SMOLTBOT_ADMIN_TOKEN", "dev-admin-token-change-me")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("SMOLTBOT_STREAM_PREFIX", "smoltbot:")
READY_PATHS = [f"http://127.0.0.1:{p}/health/ready" for p in (8787, 8788, 9101, 9102, 9103, 9104)]


def wait_ready(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


def exchange_is_sealed(redis_url: str, prefix: str, event_id: str) -> bool:
    """Whether the ``exchange.v1`` entry of ``event_id`` carries a key id (``k``): its body was
    sealed with the event key. Raises LookupError when the entry is not on the stream."""
    client = redis.Redis.from_url(redis_url)
    try:
        for _, fields in client.xrange(f"{prefix}exchanges") or []:
            if fields and fields.get(b"id") == event_id.encode():
                return b"k" in fields
    finally:
        client.close()
    raise LookupError(f"exchange {event_id} is not on {prefix}exchanges")


def one_traced_call(
    gateway: str, api: str, token: str, *, redis_url: str, prefix: str, timeout_s: float = 60
) -> str:
    """One call with the official anthropic SDK through ``gateway``; returns once the api serves
    its AP-Trace and checkpoint and the exchange was sealed on the bus, else raises."""
    client = anthropic.Anthropic(api_key="sk-smoke-test", base_url=f"{gateway}/anthropic")
    raw = client.messages.with_raw_response.create(
        model="claude-smoke",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Say hello to the smoke test."}],
    )
    agent = raw.headers["x-smoltbot-agent"]
    event_id = raw.headers["x-smoltbot-event-id"]
    checkpoint_id = raw.headers["x-aip-checkpoint-id"]
    print(f"call ok: agent {agent}, expecting tr-{event_id} and {checkpoint_id}")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api, headers=headers, timeout=5) as http:
        until = time.monotonic() + timeout_s
        while True:
            trace = http.get(f"/v1/traces/tr-{event_id}")
            checkpoint = http.get(f"/v1/agents/{agent}/checkpoints/{checkpoint_id}")
            if trace.status_code == 200 and checkpoint.status_code == 200:
                break
            if time.monotonic() > until:
                raise TimeoutError(
                    f"trace/checkpoint not served within {timeout_s:.0f} s "
                    f"({trace.status_code}, {checkpoint.status_code})"
                )
            time.sleep(0.5)
    if not exchange_is_sealed(redis_url, prefix, event_id):
        raise AssertionError(f"exchange {event_id} crossed the bus in clear: no event key")
    return f"trace and checkpoint visible: verdict {checkpoint.json()['verdict']}; body sealed"


def main() -> int:
    log_path = Path(tempfile.mkstemp(prefix="smoltbot-smoke-", suffix=".log")[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["make", "run", "FAKE=1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ok = False
    try:
        deadline = time.monotonic() + 180
        for url in READY_PATHS:
            wait_ready(url, deadline)
        print(one_traced_call(GATEWAY, API, TOKEN, redis_url=REDIS_URL, prefix=PREFIX))
        ok = True
    except Exception as exc:  # noqa: BLE001 - reported with the log tail below
        print(f"smoke failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            print("stack did not stop within 90 s", file=sys.stderr)
            ok = False
    logs = log_path.read_text(errors="replace")
    final = [line for line in logs.splitlines() if '"all children stopped"' in line]
    if not final:
        print("the supervisor never reported its children stopped", file=sys.stderr)
        ok = False
    else:
        codes = json.loads(final[-1])["codes"]
        unclean = {name: code for name, code in codes.items() if code != 0}
        if unclean:
            print(f"services did not stop cleanly: {unclean}", file=sys.stderr)
            ok = False
    if not ok:
        print(logs[-8000:], file=sys.stderr)
        return 1
    print("smoke ok: one call traced, verified, persisted and served; clean stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
