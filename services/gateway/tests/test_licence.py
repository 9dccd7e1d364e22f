"""The enterprise licence: signature and claims, grace, the state file, the validate URL, the
settings check, and the gate in front of the provider routes (in process, real Redis, a real
fake upstream and a real local validate server)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from litestar.testing import AsyncTestClient
from smoltbot_config import SettingsError, load_settings
from smoltbot_contracts.errors import ERROR_STATUS
from smoltbot_gateway.app import create_app
from smoltbot_gateway.licence import (
    GRACE_S,
    RECHECK_S,
    RETRY_S,
    Licence,
    Record,
    fingerprint,
    load_record,
    public_key_supported,
    save_record,
    state_path,
)
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_testing import FakeUpstream, free_port
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import SilentServer
from smoltbot_testing.procs import run_entrypoint

DAY = 24 * 3600.0
MESSAGE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "licensed?"}]}

# ---------------------------------------------------------------------------------------------
# Keys and tokens, made here


PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
ALGORITHM = {"ed25519": "EdDSA", "p256": "ES256", "rsa": "RS256"}


def private_key(kind: str) -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    raise AssertionError(kind)


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "license_id": "lic-test",
        "exp": int(time.time()) + 3600,
        "features": ["gateway"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: PrivateKey, kind: str = "ed25519", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=ALGORITHM[kind])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token pyjwt would refuse to make: ``alg: none``, or HS256 keyed with a public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


@pytest.fixture(scope="module")
def ed_key() -> PrivateKey:
    return private_key("ed25519")


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def licence(
    token: str, key: PrivateKey, tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any
) -> Licence:
    return Licence(token, public_pem(key), state_file=tmp_path / "licence.json", clock=clock, **kw)


def write_state(tmp_path: Path, token: str, **fields: Any) -> None:
    save_record(tmp_path / "licence.json", Record(fingerprint=fingerprint(token), **fields))


# ---------------------------------------------------------------------------------------------
# A real validate server on loopback


class ValidateServer:
    """``POST`` answers ``status`` with ``body``; records what it was sent."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {"valid": True, "next_check_seconds": 86400}
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                server.received.append(json.loads(self.rfile.read(length)))
                payload = json.dumps(server.body).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/license/validate"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ValidateServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def validate() -> Iterator[ValidateServer]:
    with ValidateServer() as server:
        yield server


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1/license/validate"


# ---------------------------------------------------------------------------------------------
# Signature, algorithm and claims


@pytest.mark.parametrize("kind", ["ed25519", "p256", "rsa"])
async def test_a_token_signed_by_the_configured_key_is_valid(kind: str, tmp_path: Path) -> None:
    key = private_key(kind)
    lic = licence(sign(key, kind), key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("valid", "verified")
    assert lic.permits()


async def test_another_keys_signature_is_refused(ed_key: PrivateKey, tmp_path: Path) -> None:
    forged = sign(private_key("ed25519"))
    lic = licence(forged, ed_key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "bad_signature")
    assert not lic.permits()


async def test_alg_none_is_refused(ed_key: PrivateKey, tmp_path: Path) -> None:
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), None)
    lic = licence(token, ed_key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "algorithm_not_allowed")


@pytest.mark.parametrize("kind", ["ed25519", "p256", "rsa"])
async def test_hs256_keyed_with_the_public_key_is_refused(kind: str, tmp_path: Path) -> None:
    """The classic confusion: an HMAC over the token with the public key's bytes as secret,
    which a verifier that lets the token pick its algorithm would accept."""
    key = private_key(kind)
    secret = public_pem(key).encode()
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), secret)
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert signature == b64(expected)  # a correct HMAC: only the algorithm choice stops it
    lic = licence(token, key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "algorithm_not_allowed")


async def test_a_token_for_another_key_type_is_refused(ed_key: PrivateKey, tmp_path: Path) -> None:
    rsa_key = private_key("rsa")
    lic = licence(sign(rsa_key, "rsa"), ed_key, tmp_path)  # RS256 against an Ed25519 key
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "algorithm_not_allowed")
    p256 = private_key("p256")
    lic = licence(sign(p256, "p256"), rsa_key, tmp_path)  # ES256 against an RSA key
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "algorithm_not_allowed")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": None}, "missing_exp"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"features": None}, "feature_not_licensed"),
        ({"features": ["aip"]}, "feature_not_licensed"),
        ({"features": None, "feature_flags": {"gateway": False}}, "feature_not_licensed"),
        ({"nbf": int(time.time()) + 3600}, "not_yet_valid"),
    ],
)
async def test_claims_a_gateway_licence_needs(
    overrides: dict[str, Any], reason: str, ed_key: PrivateKey, tmp_path: Path
) -> None:
    lic = licence(sign(ed_key, **overrides), ed_key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", reason)


async def test_feature_flags_object_also_grants_the_gateway(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    token = sign(ed_key, features=None, feature_flags={"gateway": True, "aip": True})
    lic = licence(token, ed_key, tmp_path)
    await lic.start()
    assert lic.state == "valid"


async def test_issuer_and_audience_are_checked_when_configured(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    good = sign(ed_key, iss="https://licences.example", aud="smoltbot-gateway")
    options = {"issuer": "https://licences.example", "audience": "smoltbot-gateway"}
    lic = licence(good, ed_key, tmp_path, **options)
    await lic.start()
    assert lic.state == "valid"
    cases = {
        "wrong_issuer": sign(ed_key, iss="https://elsewhere", aud="smoltbot-gateway"),
        "wrong_audience": sign(ed_key, iss="https://licences.example", aud="other"),
        "missing_iss": sign(ed_key, aud="smoltbot-gateway"),
        "missing_aud": sign(ed_key, iss="https://licences.example"),
    }
    for reason, token in cases.items():
        lic = licence(token, ed_key, tmp_path, **options)
        await lic.start()
        assert (lic.state, lic.reason) == ("invalid", reason)
    # not configured: whatever the token says is not checked
    lic = licence(cases["wrong_audience"], ed_key, tmp_path)
    await lic.start()
    assert lic.state == "valid"


# ---------------------------------------------------------------------------------------------
# Expiry and grace


async def test_expired_within_grace_of_the_last_good_validation(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    token = sign(ed_key, exp=int(time.time()) - 3600)
    write_state(tmp_path, token, last_good=time.time() - DAY)
    lic = licence(token, ed_key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("grace", "expired")
    assert lic.permits()
    report = lic.report()
    assert report["state"] == "grace"
    assert report["grace_until"] is not None


async def test_expired_past_grace_or_never_validated_is_invalid(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    token = sign(ed_key, exp=int(time.time()) - 3600)
    lic = licence(token, ed_key, tmp_path)  # no state: never validated here
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "expired")
    write_state(tmp_path, token, last_good=time.time() - 8 * DAY)
    lic = licence(token, ed_key, tmp_path)
    await lic.start()
    assert (lic.state, lic.reason) == ("invalid", "expired")
    assert not lic.permits()


async def test_valid_then_grace_then_invalid_as_time_passes(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    clock = Clock()
    t0 = clock.now
    token = sign(ed_key, exp=int(t0) + 100)
    lic = licence(token, ed_key, tmp_path, clock)
    await lic.start()
    assert lic.state == "valid"
    clock.now = t0 + 50
    await lic.check()  # a background round: the last good validation moves on
    clock.now = t0 + 200
    await lic.check()
    assert (lic.state, lic.reason) == ("grace", "expired")
    # The request path follows the clock by itself, without waiting for the next round.
    clock.now = t0 + 50 + GRACE_S - 1
    assert lic.permits()
    clock.now = t0 + 50 + GRACE_S + 1
    assert not lic.permits()
    await lic.check()
    assert (lic.state, lic.reason) == ("invalid", "expired")


async def test_a_clock_set_back_cannot_stretch_the_grace(tmp_path: Path) -> None:
    path = tmp_path / "licence.json"
    save_record(path, Record(fingerprint="f", last_good=time.time() + 30 * DAY))
    record = load_record(path, "f", time.time())
    assert record.last_good is not None
    assert record.last_good <= time.time()


# ---------------------------------------------------------------------------------------------
# The state file


def test_state_file_is_replaced_atomically_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "licence.json"
    record = Record(fingerprint="abc", last_good=1.0, remote="valid", remote_at=2.0)
    save_record(path, record)
    save_record(path, Record(fingerprint="abc", last_good=3.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["licence.json"]  # no temp left
    assert load_record(path, "abc", 10.0) == Record(fingerprint="abc", last_good=3.0)


def test_state_file_of_another_licence_or_corrupt_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "licence.json"
    save_record(path, Record(fingerprint="old", last_good=time.time()))
    assert load_record(path, "new", time.time()) == Record(fingerprint="new")
    path.write_bytes(b'{"fingerprint": "new", "last_go')
    assert load_record(path, "new", time.time()) == Record(fingerprint="new")


def test_the_state_file_never_holds_the_token(ed_key: PrivateKey, tmp_path: Path) -> None:
    token = sign(ed_key)
    write_state(tmp_path, token, last_good=1.0)
    assert token not in (tmp_path / "licence.json").read_text()


async def test_an_unwritable_state_file_costs_only_the_restart_grace(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    lic = Licence(sign(ed_key), public_pem(ed_key), state_file=blocker / "licence.json")
    await lic.start()
    assert lic.state == "valid"
    assert lic.permits()


def test_default_state_file_is_in_the_spool_directory() -> None:
    settings = load_settings(GatewaySettings, {"SMOLTBOT_SPOOL_DIR": "/data/spool"})
    assert state_path(settings) == Path("/data/spool/licence.json")
    settings = load_settings(GatewaySettings, {"MNEMOM_LICENSE_STATE_FILE": "/state/l.json"})
    assert state_path(settings) == Path("/state/l.json")


# ---------------------------------------------------------------------------------------------
# The validate URL


async def test_a_good_answer_is_trusted_a_day(
    ed_key: PrivateKey, tmp_path: Path, validate: ValidateServer
) -> None:
    clock = Clock()
    t0 = clock.now
    token = sign(ed_key, exp=int(t0) + 30 * int(DAY))
    lic = licence(token, ed_key, tmp_path, clock, validate_url=validate.url, instance_id="gw-1")
    await lic.start()
    try:
        assert (lic.state, lic.reason) == ("valid", "validated")
        assert validate.received == [
            {
                "license": token,
                "instance_id": "gw-1",
                "instance_metadata": {
                    "gateway_version": validate.received[0]["instance_metadata"]["gateway_version"],
                    "product": "smoltbot",
                },
            }
        ]
        clock.now = t0 + RECHECK_S - 60
        await lic.check()
        assert len(validate.received) == 1  # cached
        clock.now = t0 + RECHECK_S + 1
        await lic.check()
        assert len(validate.received) == 2
        assert lic.state == "valid"
    finally:
        await lic.close()


async def test_an_offline_licence_never_phones_home(
    ed_key: PrivateKey, tmp_path: Path, validate: ValidateServer
) -> None:
    token = sign(ed_key, is_offline=True)
    lic = licence(token, ed_key, tmp_path, validate_url=validate.url)
    await lic.start()
    try:
        assert (lic.state, lic.reason) == ("valid", "offline")
        assert validate.received == []
    finally:
        await lic.close()


async def test_validate_url_refusing_connections_gives_grace(
    ed_key: PrivateKey, tmp_path: Path
) -> None:
    clock = Clock()
    token = sign(ed_key, exp=int(clock.now) + 30 * int(DAY))
    write_state(tmp_path, token, last_good=clock.now - 2 * DAY, remote="valid",
                remote_at=clock.now - 2 * DAY)  # fmt: skip
    lic = licence(token, ed_key, tmp_path, clock, validate_url=refused_url())
    await lic.start()
    try:
        assert (lic.state, lic.reason) == ("grace", "validate_unreachable")
        assert lic.permits()
        report = lic.report()
        validate_report = report["validate"]
        assert isinstance(validate_report, dict)
        assert validate_report["error"] == "ConnectError"
        # without a good validation in the last 7 days there is nothing to be lenient about
        clock.now += 5 * DAY + 1
        await lic.check()
        assert (lic.state, lic.reason) == ("invalid", "validate_unreachable")
    finally:
        await lic.close()


async def test_validate_url_timing_out_gives_grace(ed_key: PrivateKey, tmp_path: Path) -> None:
    token = sign(ed_key)
    write_state(tmp_path, token, last_good=time.time() - 3 * DAY)
    async with SilentServer() as silent:
        url = f"http://127.0.0.1:{silent.port}/v1/license/validate"
        lic = licence(token, ed_key, tmp_path, validate_url=url, validate_timeout_s=0.2)
        started = time.monotonic()
        await lic.start()
        try:
            assert time.monotonic() - started < 2
            assert (lic.state, lic.reason) == ("grace", "validate_unreachable")
        finally:
            await lic.close()


async def test_a_failed_check_is_retried_after_an_hour(
    ed_key: PrivateKey, tmp_path: Path, validate: ValidateServer
) -> None:
    clock = Clock()
    t0 = clock.now
    token = sign(ed_key, exp=int(t0) + 30 * int(DAY))
    write_state(tmp_path, token, last_good=t0 - DAY)
    validate.status = 503  # says nothing about the licence
    lic = licence(token, ed_key, tmp_path, clock, validate_url=validate.url)
    await lic.start()
    try:
        assert (lic.state, lic.reason) == ("grace", "validate_unreachable")
        clock.now = t0 + RETRY_S - 60
        await lic.check()
        assert len(validate.received) == 1
        validate.status = 200
        clock.now = t0 + RETRY_S + 1
        await lic.check()
        assert len(validate.received) == 2
        assert (lic.state, lic.reason) == ("valid", "validated")
    finally:
        await lic.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [(403, {"error": "revoked"}), (410, {"error": "expired"}), (200, {"valid": False})],
)
async def test_a_definite_invalid_answer_ends_even_the_grace(
    status: int,
    body: dict[str, Any],
    ed_key: PrivateKey,
    tmp_path: Path,
    validate: ValidateServer,
) -> None:
    token = sign(ed_key)
    write_state(tmp_path, token, last_good=time.time() - 60)
    validate.status, validate.body = status, body
    lic = licence(token, ed_key, tmp_path, validate_url=validate.url)
    await lic.start()
    await lic.close()
    assert (lic.state, lic.reason) == ("invalid", "revoked")
    assert not lic.permits()
    # and a restart while the validate URL is unreachable does not bring it back
    again = licence(token, ed_key, tmp_path, validate_url=refused_url())
    await again.start()
    await again.close()
    assert (again.state, again.reason) == ("invalid", "revoked")


async def test_the_background_task_rechecks_until_closed(
    ed_key: PrivateKey, tmp_path: Path, validate: ValidateServer
) -> None:
    clock = Clock()
    token = sign(ed_key, exp=int(clock.now) + 30 * int(DAY))
    lic = licence(token, ed_key, tmp_path, clock, validate_url=validate.url, tick_s=0.01)
    await lic.start()
    lic.start_background()
    clock.now += RECHECK_S + 1
    for _ in range(200):
        if len(validate.received) >= 2:
            break
        await asyncio.sleep(0.01)
    await lic.close()
    assert len(validate.received) == 2
    count = len(validate.received)
    clock.now += RECHECK_S + 1
    await asyncio.sleep(0.05)
    assert len(validate.received) == count  # stopped


# ---------------------------------------------------------------------------------------------
# Settings: a JWT without its key is bad configuration (exit 2)


def test_a_jwt_without_a_public_key_names_both_variables(ed_key: PrivateKey) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(GatewaySettings, {"MNEMOM_LICENSE_JWT": sign(ed_key)})
    assert set(info.value.problems) == {"MNEMOM_LICENSE_PUBLIC_KEY"}
    assert "MNEMOM_LICENSE_JWT" in str(info.value)


@pytest.mark.parametrize("kind", ["p384", "rsa1024"])
def test_unsupported_public_keys_are_bad_configuration(kind: str) -> None:
    pem = public_pem(private_key(kind))
    assert not public_key_supported(pem)
    with pytest.raises(SettingsError) as info:
        load_settings(GatewaySettings, {"MNEMOM_LICENSE_PUBLIC_KEY": pem})
    assert set(info.value.problems) == {"MNEMOM_LICENSE_PUBLIC_KEY"}
    with pytest.raises(SettingsError):
        load_settings(GatewaySettings, {"MNEMOM_LICENSE_PUBLIC_KEY": "not a key"})


def test_a_one_line_pem_with_escaped_newlines_is_accepted(ed_key: PrivateKey) -> None:
    one_line = public_pem(ed_key).strip().replace("\n", "\\n")
    settings = load_settings(
        GatewaySettings,
        {"MNEMOM_LICENSE_JWT": sign(ed_key), "MNEMOM_LICENSE_PUBLIC_KEY": one_line},
    )
    assert settings.licence_public_key == one_line


def test_entrypoint_exits_2_for_a_jwt_without_a_public_key(ed_key: PrivateKey) -> None:
    token = sign(ed_key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMOM_")}
    env["MNEMOM_LICENSE_JWT"] = token
    result = run_entrypoint("gateway", env)
    assert result.returncode == 2
    assert "MNEMOM_LICENSE_PUBLIC_KEY" in result.stderr
    assert "MNEMOM_LICENSE_JWT" in result.stderr
    assert token not in result.stderr  # values are never echoed


# ---------------------------------------------------------------------------------------------
# The gate: provider routes only, in each provider's error shape


def app_settings(prefix: str, tmp_path: Path, upstream: str, **env: str) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        {
            "REDIS_URL": REDIS_URL,
            "SMOLTBOT_STREAM_PREFIX": prefix,
            "SMOLTBOT_SPOOL_DIR": str(tmp_path / "spool"),
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": upstream,
            "SMOLTBOT_UPSTREAM_OPENAI_URL": upstream,
            "SMOLTBOT_UPSTREAM_GEMINI_URL": upstream,
            **env,
        },
    )


class Apps:
    """``await apps.start(**env)``: a running app (lifespan entered); ``await apps.stop(c)``
    closes one (a restart), and every one left is closed after the test."""

    def __init__(self, prefix: str, tmp_path: Path, upstream: str) -> None:
        self._args = (prefix, tmp_path, upstream)
        self._open: list[AsyncTestClient[Any]] = []

    async def start(self, **env: str) -> AsyncTestClient[Any]:
        app = create_app(app_settings(*self._args, **env))
        client: AsyncTestClient[Any] = AsyncTestClient(app)  # type: ignore[arg-type]
        await client.__aenter__()
        self._open.append(client)
        return client

    async def stop(self, client: AsyncTestClient[Any]) -> None:
        self._open.remove(client)
        await client.__aexit__(None, None, None)

    async def stop_all(self) -> None:
        while self._open:
            await self.stop(self._open[-1])


@pytest.fixture
async def apps(prefix: str, tmp_path: Path, fake: FakeUpstream) -> AsyncIterator[Apps]:
    started = Apps(prefix, tmp_path, fake.url)
    yield started
    await started.stop_all()


def licence_env(key: PrivateKey, token: str, **extra: str) -> dict[str, str]:
    return {"MNEMOM_LICENSE_JWT": token, "MNEMOM_LICENSE_PUBLIC_KEY": public_pem(key), **extra}


async def anthropic_call(client: AsyncTestClient[Any]) -> Any:
    return await client.post(
        "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "sk-licence"}
    )


async def test_invalid_licence_refuses_provider_calls_but_never_probes(
    apps: Apps, ed_key: PrivateKey
) -> None:
    assert ERROR_STATUS["license_error"] == 403
    forged = sign(private_key("ed25519"))
    client = await apps.start(**licence_env(ed_key, forged))
    anthropic = await anthropic_call(client)
    assert anthropic.status_code == 403
    assert anthropic.json() == {
        "error": {"type": "license_error", "message": "License invalid or expired"},
        "type": "license_error",
        "message": "License invalid or expired",
    }
    assert anthropic.headers["access-control-allow-origin"] == "*"
    openai = await client.post(
        "/openai/v1/chat/completions", json=MESSAGE, headers={"authorization": "Bearer sk-o"}
    )
    assert openai.status_code == 403
    assert openai.json()["error"]["type"] == "license_error"
    assert openai.json()["error"]["message"] == "License invalid or expired"
    gemini = await client.post(
        "/gemini/v1beta/models/g:generateContent", json={}, headers={"x-goog-api-key": "g"}
    )
    assert gemini.status_code == 403
    assert gemini.json()["error"]["status"] == "PERMISSION_DENIED"
    named = await client.post(
        "/agent/bot/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "sk-licence"}
    )
    assert named.status_code == 403
    for path in ("/health", "/health/", "/health/live", "/health/startup", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["licence"]["state"] == "invalid"
    assert ready.json()["licence"]["reason"] == "bad_signature"
    assert forged not in ready.text
    exposition = (await client.get("/metrics")).text
    assert 'smoltbot_gateway_licence_state{state="invalid"} 1.0' in exposition
    assert 'smoltbot_gateway_licence_state{state="valid"} 0.0' in exposition
    assert 'smoltbot_gateway_refusals_total{reason="licence"}' in exposition
    assert (await client.options("/anthropic/v1/messages")).status_code == 204


async def test_no_licence_runs_unlicensed(apps: Apps) -> None:
    client = await apps.start()
    assert (await anthropic_call(client)).status_code == 200
    ready = (await client.get("/health/ready")).json()
    assert ready["licence"] == {"state": "unlicensed", "reason": "no_licence"}
    exposition = (await client.get("/metrics")).text
    assert 'smoltbot_gateway_licence_state{state="unlicensed"} 1.0' in exposition


async def test_offline_licence_without_a_validate_url_serves(
    apps: Apps, ed_key: PrivateKey
) -> None:
    client = await apps.start(**licence_env(ed_key, sign(ed_key, is_offline=True)))
    response = await anthropic_call(client)
    assert response.status_code == 200
    assert response.json()["content"][-1]["text"] == "Echo: licensed?"
    licence_report = (await client.get("/health/ready")).json()["licence"]
    assert licence_report["state"] == "valid"
    assert licence_report["offline"] is True
    assert licence_report["licence_id"] == "lic-test"


async def test_validate_url_saying_invalid_refuses_calls(
    apps: Apps, ed_key: PrivateKey, validate: ValidateServer
) -> None:
    validate.status, validate.body = 403, {"error": "License revoked"}
    env = licence_env(ed_key, sign(ed_key), MNEMOM_LICENSE_VALIDATE_URL=validate.url)
    client = await apps.start(**env)
    response = await anthropic_call(client)
    assert response.status_code == 403
    assert response.json()["type"] == "license_error"
    assert len(validate.received) == 1  # at start, never per call
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["licence"]["reason"] == "revoked"


async def test_restart_within_grace_keeps_serving(
    apps: Apps, ed_key: PrivateKey, validate: ValidateServer, tmp_path: Path
) -> None:
    token = sign(ed_key, exp=int(time.time()) + 30 * int(DAY))
    env = licence_env(ed_key, token, MNEMOM_LICENSE_VALIDATE_URL=validate.url)
    first = await apps.start(**env)
    assert (await anthropic_call(first)).status_code == 200
    await apps.stop(first)
    state_file = tmp_path / "spool" / "licence.json"
    stored = msgspec.json.decode(state_file.read_bytes())
    assert stored["remote"] == "valid"
    # Two days later, the validate URL cannot be reached: the grace carries the restart.
    stored["last_good"] -= 2 * DAY
    stored["remote_at"] -= 2 * DAY
    state_file.write_bytes(msgspec.json.encode(stored))
    down = {**env, "MNEMOM_LICENSE_VALIDATE_URL": refused_url()}
    second = await apps.start(**down)
    assert (await anthropic_call(second)).status_code == 200
    ready = (await second.get("/health/ready")).json()["licence"]
    assert (ready["state"], ready["reason"]) == ("grace", "validate_unreachable")
    await apps.stop(second)
    # Without the state file there was never a good validation to be lenient about.
    state_file.unlink()
    third = await apps.start(**down)
    assert (await anthropic_call(third)).status_code == 403
