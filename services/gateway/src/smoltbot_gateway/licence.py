"""The gateway's enterprise licence (architecture §5, §10; docs/operations.md "Licence").

``MNEMOM_LICENSE_JWT`` is verified against ``MNEMOM_LICENSE_PUBLIC_KEY`` with the one algorithm
that key type signs with (Ed25519 -> EdDSA, P-256 -> ES256, RSA >= 2048 bits -> RS256): ``none``
and HS* are never accepted, so the public key cannot be turned into an HMAC secret. Claims:

* ``exp`` is required; ``iss`` / ``aud`` must match when ``MNEMOM_LICENSE_ISSUER`` /
  ``MNEMOM_LICENSE_AUDIENCE`` are set; ``nbf`` / ``iat`` are honoured (60 s of clock skew);
* the licence must grant the gateway: ``features`` (a list) contains ``"gateway"``, or
  ``feature_flags`` (an object) has ``"gateway": true``;
* ``is_offline: true`` skips the validate URL: the signature and ``exp`` are trusted alone.

States: ``valid``; ``grace`` (expired, or the validate URL cannot be reached, within 7 days of
the last good validation); ``invalid`` (bad token, expired past the grace, a definite "invalid"
answer from the validate URL); ``unlicensed`` (no JWT: development, allowed). The last good
validation is kept in a small state file (atomic replace) so a restart keeps its grace.

Everything that takes time (signature check, phone home, the state file) happens at start and in
one background task; a call only compares the clock with a deadline (:meth:`Licence.permits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import httpx
import jwt
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from smoltbot_gateway import metrics

if TYPE_CHECKING:
    from smoltbot_gateway.settings import GatewaySettings

__all__ = [
    "GRACE_S",
    "KEY_REQUIREMENT",
    "RECHECK_S",
    "RETRY_S",
    "STATES",
    "Licence",
    "LicenceState",
    "public_key_supported",
    "state_path",
]

log = logging.getLogger(__name__)

LicenceState = Literal["valid", "grace", "invalid", "unlicensed"]
STATES: Final[tuple[LicenceState, ...]] = get_args(LicenceState)

GRACE_S: Final = 7 * 24 * 3600.0  # after the last good validation
RECHECK_S: Final = 24 * 3600.0  # a good answer from the validate URL is trusted this long
RETRY_S: Final = 3600.0  # after a failed or negative answer
TICK_S: Final = 60.0  # the state (gauge, readiness, state file) is re-evaluated this often
LEEWAY_S: Final = 60  # clock skew allowed on nbf / iat
FEATURE: Final = "gateway"
STATE_FILE_NAME: Final = "licence.json"
KEY_REQUIREMENT: Final = "must be a PEM public key: Ed25519, EC P-256 or RSA of at least 2048 bits"
# Answers of the validate URL that mean "this licence is not valid" (the reference API: 401
# invalid, 403 revoked, 409 too many activations, 410 expired). Anything else that is not 2xx
# (5xx, 404, 429, a redirect ...) says nothing about the licence: it counts as unreachable.
_DEFINITE_INVALID: Final = frozenset({401, 403, 409, 410})

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
Clock = Callable[[], float]


# ---------------------------------------------------------------------------------------------
# The key and the token


def _pem(text: str) -> bytes:
    """PEM text as configured; ``\\n`` escapes (one-line ``.env`` files) become newlines."""
    return text.strip().replace("\\n", "\n").encode()


def load_public_key(text: str) -> tuple[PublicKey, str]:
    """The public key and the one JWS algorithm it verifies; ``ValueError`` if unsupported."""
    try:
        key = load_pem_public_key(_pem(text))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a PEM public key") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key, "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key, "RS256"
    raise ValueError("unsupported public key type")


def public_key_supported(text: str) -> bool:
    """Whether ``text`` is a key :func:`load_public_key` accepts (the settings check)."""
    try:
        load_public_key(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified licence says."""

    expires_at: float
    offline: bool
    licence_id: str | None


class RejectedError(Exception):
    """The token itself is not a licence for this gateway; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _grants_gateway(payload: dict[str, Any]) -> bool:
    features = payload.get("features")
    if isinstance(features, list) and FEATURE in features:
        return True
    flags = payload.get("feature_flags")
    return isinstance(flags, dict) and flags.get(FEATURE) is True


def verify(
    token: str, key: PublicKey, algorithm: str, *, issuer: str = "", audience: str = ""
) -> Claims:
    """Check the signature and claims of ``token`` (``exp`` is left to the caller, who applies
    the grace); :class:`RejectedError` when it is not a licence for this gateway."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=issuer or None,
            audience=audience or None,
            leeway=LEEWAY_S,
            options={
                "require": ["exp"],
                "verify_exp": False,
                "verify_iss": bool(issuer),
                "verify_aud": bool(audience),
            },
        )
    except jwt.InvalidAlgorithmError:
        raise RejectedError("algorithm_not_allowed") from None
    except jwt.InvalidSignatureError:
        raise RejectedError("bad_signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise RejectedError(f"missing_{exc.claim}") from None
    except jwt.InvalidIssuerError:
        raise RejectedError("wrong_issuer") from None
    except jwt.InvalidAudienceError:
        raise RejectedError("wrong_audience") from None
    except jwt.ImmatureSignatureError:
        raise RejectedError("not_yet_valid") from None
    except jwt.InvalidTokenError:
        raise RejectedError("malformed") from None
    exp = payload["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise RejectedError("malformed")
    if not _grants_gateway(payload):
        raise RejectedError("feature_not_licensed")
    licence_id = payload.get("license_id")
    return Claims(
        expires_at=float(exp),
        offline=payload.get("is_offline") is True,
        licence_id=licence_id if isinstance(licence_id, str) else None,
    )


# ---------------------------------------------------------------------------------------------
# The state that survives a restart


class Record(msgspec.Struct, kw_only=True):
    """The state file: what this gateway last knew about one licence (by its fingerprint)."""

    fingerprint: str
    last_good: float | None = None  # unix seconds of the last good validation
    remote: Literal["valid", "invalid"] | None = None  # the validate URL's last definite answer
    remote_at: float | None = None  # when it gave it


def fingerprint(token: str) -> str:
    """Names a licence in the state file without storing it: a new JWT starts afresh."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def state_path(settings: GatewaySettings) -> Path:
    """``MNEMOM_LICENSE_STATE_FILE``, else ``licence.json`` in the spool directory (the one
    directory a gateway already keeps on a writable volume)."""
    if settings.licence_state_file:
        return Path(settings.licence_state_file)
    return Path(settings.spool_dir) / STATE_FILE_NAME


def load_record(path: Path, token_fingerprint: str, now: float) -> Record:
    """The stored record for this licence, or a fresh one (missing, unreadable, another JWT)."""
    try:
        record = msgspec.json.decode(path.read_bytes(), type=Record)
    except FileNotFoundError:
        return Record(fingerprint=token_fingerprint)
    except (OSError, msgspec.DecodeError) as exc:
        log.warning("licence state file unreadable; starting afresh", extra={"error": str(exc)})
        return Record(fingerprint=token_fingerprint)
    if record.fingerprint != token_fingerprint:
        return Record(fingerprint=token_fingerprint)
    # A clock set back must not stretch the grace.
    if record.last_good is not None:
        record.last_good = min(record.last_good, now)
    if record.remote_at is not None:
        record.remote_at = min(record.remote_at, now)
    return record


def save_record(path: Path, record: Record) -> None:
    """Write ``record`` atomically: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(msgspec.json.encode(record))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not every filesystem can sync a directory
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# The assessment


@dataclass(frozen=True, slots=True)
class Assessment:
    """The licence state at one moment; calls are served while the clock is before
    ``allowed_until`` (so a call never waits for the background task to notice an expiry)."""

    state: LicenceState
    reason: str
    allowed_until: float


def assess(
    claims: Claims | RejectedError,
    record: Record,
    now: float,
    *,
    remote: bool,
    unreachable: bool = False,
) -> Assessment:
    """The state of a licence from what is known at ``now``. ``remote``: a validate URL applies
    (configured, and the licence is not offline)."""
    if isinstance(claims, RejectedError):
        return Assessment("invalid", claims.reason, -math.inf)
    if remote and record.remote == "invalid":  # revoked: no grace, not even once expired
        return Assessment("invalid", "revoked", -math.inf)
    grace_end = -math.inf if record.last_good is None else record.last_good + GRACE_S
    if now >= claims.expires_at:
        if now < grace_end:
            return Assessment("grace", "expired", grace_end)
        return Assessment("invalid", "expired", -math.inf)
    if not remote:
        # Trusted on its signature until exp; past it the grace counts from this check.
        reason = "offline" if claims.offline else "verified"
        return Assessment("valid", reason, max(claims.expires_at, now + GRACE_S))
    fresh = record.remote_at is not None and now < record.remote_at + RECHECK_S
    if record.remote == "valid" and fresh:
        return Assessment("valid", "validated", max(grace_end, now))
    reason = "validate_unreachable" if unreachable else "not_validated"
    if now < grace_end:
        return Assessment("grace", reason, grace_end)
    return Assessment("invalid", reason, -math.inf)


def _iso(at: float | None) -> str | None:
    if at is None or not math.isfinite(at):
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _gateway_version() -> str:
    try:
        return version("smoltbot-gateway")
    except PackageNotFoundError:  # a source tree without metadata
        return "0.0.0"


# ---------------------------------------------------------------------------------------------
# The licence of one gateway process


class Licence:
    """The licence state of one process: :meth:`start` once, then :meth:`run` in the
    background; :meth:`permits` on every provider call; :meth:`report` for readiness."""

    def __init__(
        self,
        token: str,
        public_key: str,
        *,
        state_file: Path,
        issuer: str = "",
        audience: str = "",
        validate_url: str = "",
        validate_timeout_s: float = 5.0,
        instance_id: str = "",
        clock: Clock = time.time,
        tick_s: float = TICK_S,
    ) -> None:
        self._token = token.strip()
        self._clock = clock
        self._tick_s = tick_s
        self._state_file = state_file
        self._issuer = issuer
        self._audience = audience
        self._validate_url = validate_url
        self._instance_id = instance_id or socket.gethostname()
        self._http: httpx.AsyncClient | None = None
        if validate_url and self._token:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(validate_timeout_s))
        self._key: tuple[PublicKey, str] | None = None
        if self._token:
            self._key = load_public_key(public_key)  # the settings checked it already
        self._claims: Claims | RejectedError = RejectedError("not_checked")
        self._record = Record(fingerprint=fingerprint(self._token) if self._token else "")
        self._saved: Record | None = None
        self._save_failed = False
        self._unreachable: str | None = None
        self._next_remote = -math.inf
        self._task: asyncio.Task[None] | None = None
        if self._token:
            self._assessment = Assessment("invalid", "not_checked", -math.inf)
        else:
            self._assessment = Assessment("unlicensed", "no_licence", math.inf)
        self._allowed_until = self._assessment.allowed_until

    @classmethod
    def from_settings(cls, settings: GatewaySettings, **overrides: Any) -> Licence:
        options: dict[str, Any] = {
            "state_file": state_path(settings),
            "issuer": settings.licence_issuer,
            "audience": settings.licence_audience,
            "validate_url": settings.licence_validate_url,
            "validate_timeout_s": settings.licence_validate_timeout_s,
            "instance_id": settings.gateway_instance or settings.consumer_name,
            **overrides,
        }
        return cls(settings.licence_jwt, settings.licence_public_key, **options)

    # -- the request path ----------------------------------------------------------------------

    def permits(self) -> bool:
        """Whether a provider call may go through now (one comparison, no I/O)."""
        return self._clock() < self._allowed_until

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> LicenceState:
        return self._assessment.state

    @property
    def reason(self) -> str:
        return self._assessment.reason

    def _remote(self) -> bool:
        """A validate URL applies: configured, and the licence does not say it is offline."""
        claims = self._claims
        return bool(self._validate_url) and not (isinstance(claims, Claims) and claims.offline)

    def refresh(self) -> Assessment:
        """Re-assess from what is in memory; logs and exports a change of state."""
        if not self._token:
            self._publish(self._assessment)
            return self._assessment
        now = self._clock()
        found = assess(
            self._claims,
            self._record,
            now,
            remote=self._remote(),
            unreachable=self._unreachable is not None,
        )
        if found.state == "valid" and found.reason in ("verified", "offline"):
            self._record.last_good = now
        self._allowed_until = found.allowed_until
        previous, self._assessment = self._assessment, found
        if (previous.state, previous.reason) != (found.state, found.reason):
            self._log_change(found)
        self._publish(found)
        return found

    @staticmethod
    def _publish(found: Assessment) -> None:
        for state in STATES:
            metrics.LICENCE_STATE.labels(state).set(1 if state == found.state else 0)

    def _log_change(self, found: Assessment) -> None:
        extra: dict[str, Any] = {"licence_state": found.state, "reason": found.reason}
        if isinstance(self._claims, Claims):
            extra["expires_at"] = _iso(self._claims.expires_at)
            extra["licence_id"] = self._claims.licence_id
        if found.state == "valid":
            log.info("licence valid", extra=extra)
        elif found.state == "grace":
            extra["grace_until"] = _iso(found.allowed_until)
            log.warning("licence in its grace period", extra=extra)
        else:
            log.error("licence invalid: provider calls are refused (403)", extra=extra)

    def report(self) -> dict[str, object]:
        """The readiness body's ``licence`` section (never the token)."""
        found = self.refresh()
        out: dict[str, object] = {"state": found.state, "reason": found.reason}
        if found.state == "grace":
            out["grace_until"] = _iso(found.allowed_until)
        if isinstance(self._claims, Claims):
            out["licence_id"] = self._claims.licence_id
            out["expires_at"] = _iso(self._claims.expires_at)
            out["offline"] = self._claims.offline
        if self._token:
            out["last_validated_at"] = _iso(self._record.last_good)
        if self._token and self._remote():
            out["validate"] = {
                "last_answer": self._record.remote,
                "answered_at": _iso(self._record.remote_at),
                "next_check_at": _iso(self._next_remote),
                "error": self._unreachable,
            }
        return out

    # -- checking ------------------------------------------------------------------------------

    def _verify(self) -> None:
        assert self._key is not None
        key, algorithm = self._key
        try:
            self._claims = verify(
                self._token, key, algorithm, issuer=self._issuer, audience=self._audience
            )
        except RejectedError as exc:
            self._claims = exc

    async def start(self) -> None:
        """Load the state file and check once (phoning home if due, within its timeout), so
        the first call already sees a settled state."""
        if not self._token:
            self._publish(self._assessment)
            log.warning(
                "no licence configured (MNEMOM_LICENSE_JWT): running unlicensed, for development"
            )
            return
        record = await asyncio.to_thread(
            load_record, self._state_file, self._record.fingerprint, self._clock()
        )
        self._record = record
        self._saved = msgspec.structs.replace(record)
        if record.remote == "valid" and record.remote_at is not None:
            self._next_remote = record.remote_at + RECHECK_S
        elif record.remote == "invalid" and record.remote_at is not None:
            self._next_remote = record.remote_at + RETRY_S
        await self.check()

    async def check(self) -> None:
        """One round: verify, phone home if due, re-assess, persist. Never raises."""
        try:
            self._verify()
            now = self._clock()
            claims = self._claims
            usable = isinstance(claims, Claims) and now < claims.expires_at
            if usable and self._remote() and now >= self._next_remote:
                await self._phone_home()
            self.refresh()
            await self._persist()
        except Exception:
            log.exception("licence check failed; the previous state stands")

    async def _phone_home(self) -> None:
        """POST the licence to the validate URL and record a definite answer."""
        assert self._http is not None
        body = {
            "license": self._token,
            "instance_id": self._instance_id,
            "instance_metadata": {"gateway_version": _gateway_version(), "product": "smoltbot"},
        }
        try:
            response = await self._http.post(self._validate_url, json=body)
        except httpx.HTTPError as exc:
            self._validation_failed(type(exc).__name__)
            return
        status = response.status_code
        now = self._clock()
        if 200 <= status < 300:
            try:
                answer = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                answer = {}
            if isinstance(answer, dict) and answer.get("valid") is False:
                self._validated(now, good=False)
            else:
                self._validated(now, good=True)
        elif status in _DEFINITE_INVALID:
            self._validated(now, good=False)
        else:
            self._validation_failed(f"HTTP {status}")

    def _validated(self, now: float, *, good: bool) -> None:
        self._unreachable = None
        self._record.remote = "valid" if good else "invalid"
        self._record.remote_at = now
        if good:
            self._record.last_good = now
            self._next_remote = now + RECHECK_S
        else:
            self._next_remote = now + RETRY_S
            log.error("the licence validate URL answered: licence invalid")

    def _validation_failed(self, error: str) -> None:
        self._unreachable = error
        self._next_remote = self._clock() + RETRY_S
        log.warning("licence validate URL unreachable; retrying in an hour", extra={"error": error})

    async def _persist(self) -> None:
        if self._saved == self._record:
            return
        snapshot = msgspec.structs.replace(self._record)
        try:
            await asyncio.to_thread(save_record, self._state_file, snapshot)
        except OSError as exc:
            if not self._save_failed:
                log.warning(
                    "licence state file not writable: a restart loses the grace period",
                    extra={"path": str(self._state_file), "error": str(exc)},
                )
            self._save_failed = True
            return
        self._save_failed = False
        self._saved = snapshot

    async def run(self) -> None:
        """Re-check every tick until cancelled (the validate URL only when due)."""
        while True:
            await asyncio.sleep(self._tick_s)
            await self.check()

    def start_background(self) -> None:
        if self._token and self._task is None:
            self._task = asyncio.create_task(self.run(), name="licence")

    async def close(self) -> None:
        """Stop the background task, keep the latest state, close the HTTP client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._token:
            await self._persist()
        if self._http is not None:
            await self._http.aclose()
