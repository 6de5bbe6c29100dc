"""Registration, authentication, usernames, discoverability and the phone/username directory."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass

import phonenumbers

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.bus.base import Bus, DeviceEvent
from porch.server.clock import Clock
from porch.server.providers.sms import SmsProvider
from porch.server.ratelimit import Limit, RateLimiter, in_words
from porch.server.settings import Settings
from porch.server.store.base import Account, Device, RegistrationSession, Store, UsernameTaken

log = logging.getLogger("porch.accounts")

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,31}$")
# secrets.token_urlsafe(32): 256 random bits, 43 characters.
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_DEVICE_NAME = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated device."""

    account_id: str
    device_id: int


@dataclass(frozen=True, slots=True)
class CodeSent:
    session_id: str
    expires_in: int  # seconds the code is good for
    next_code_in: int  # seconds before the number may be sent another code
    attempts_left: int


@dataclass(frozen=True, slots=True)
class Registration:
    account_id: str
    device_id: int
    registration_id: int
    password: str
    replaced: bool


def normalize_phone(raw: str) -> str:
    """E.164 or a clear error. Only a leading + form is accepted: no guessing of regions."""
    if not isinstance(raw, str) or not raw.startswith("+") or len(raw) > 20:
        raise ProtocolError(ErrorCode.INVALID_PHONE, "phone numbers are E.164, like +14155550100")
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise ProtocolError(ErrorCode.INVALID_PHONE, "this is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ProtocolError(ErrorCode.INVALID_PHONE, "this phone number does not exist")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_username(raw: str) -> str:
    name = raw.lstrip("@").lower()
    if not USERNAME_RE.match(name):
        raise ProtocolError(
            ErrorCode.INVALID_USERNAME,
            "usernames are 3-32 characters: a letter, then letters, digits or _",
        )
    return name


def _session_hash(session_id: str) -> bytes:
    # Only the hash is stored: a copy of the database does not hold live session ids.
    if not (isinstance(session_id, str) and SESSION_ID_RE.match(session_id)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a session id is 43 URL-safe characters")
    return hashlib.sha256(session_id.encode("ascii")).digest()


def hash_secret(secret: str) -> bytes:
    # Device passwords are 256-bit random values, so a fast hash is enough: there is no
    # dictionary to attack. The hash keeps a database dump from being a set of credentials.
    return hashlib.sha256(secret.encode("utf-8")).digest()


class AccountService:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        sms: SmsProvider,
        limiter: RateLimiter,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._bus = bus
        self._sms = sms
        self._limiter = limiter
        self._clock = clock
        self._settings = settings
        self._code_key: bytes | None = None
        s = settings
        self._limits = {
            "code_address": Limit.parse(s.limit_code_per_address),
            "register_address": Limit.parse(s.limit_register_per_address),
            "directory": Limit.parse(s.limit_directory_per_account),
            "auth_failures": Limit.parse(s.limit_auth_failures_per_address),
        }

    # Registration --------------------------------------------------------------------------

    # Registration sessions, after Signal-Server's VerificationSession: every code belongs to
    # a session with its own attempt counter, so wrong guesses in an attacker's session never
    # use up the owner's; codes to one number are spaced exponentially instead of an hourly
    # cap, so a flood of requests delays the owner but never walls the number off
    # (docs/security.md, "Verification codes").

    async def request_code(
        self, raw_phone: str, address: str, session_id: str | None = None
    ) -> CodeSent:
        """Send a code, in a new session or in the client's own (then its attempts restart)."""
        phone = normalize_phone(raw_phone)
        continued = None
        if session_id is not None:
            current = await self._store.get_registration_session(_session_hash(session_id))
            # A session that ended or is for another number is not an error: start a new one.
            if current is not None and current.phone == phone:
                continued = session_id
        await self._limiter.hit("code-address", address, self._limits["code_address"])
        now = self._clock.now_ms()
        s = self._settings
        slot = await self._store.claim_code_send(
            phone, now, self._interval_ms, s.code_quiet_seconds * 1000
        )
        wait = -(-(slot.next_code - now) // 1000)
        if not slot.granted:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"a code was sent to this number a short while ago; try again in {in_words(wait)}",
                retry_after=wait,
            )
        code = f"{secrets.randbelow(1_000_000):06d}"
        code_hash = None if self._sms.owns_code else await self._code_digest(phone, code)
        sid = continued or secrets.token_urlsafe(32)
        await self._store.put_registration_session(
            RegistrationSession(
                _session_hash(sid), phone, code_hash, 0, now + s.code_ttl_seconds * 1000
            )
        )
        await self._sms.start(phone, code)
        return CodeSent(sid, s.code_ttl_seconds, wait, s.code_max_attempts)

    def _interval_ms(self, sends: int) -> int:
        """The wait after the n-th code of a run: interval * 2^(n-1), at most the maximum."""
        s = self._settings
        exponent = min(sends - 1, 30)  # 2^30 s is far past any maximum; keeps the int small
        return min(s.code_interval_seconds << exponent, s.code_interval_max_seconds) * 1000

    async def verify(self, session_id: str, code: str, name: str, address: str) -> Registration:
        await self._limiter.hit("register-address", address, self._limits["register_address"])
        if not (isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()):
            raise ProtocolError(ErrorCode.CODE_INVALID, "the code is six digits")
        id_hash = _session_hash(session_id)
        session = await self._store.get_registration_session(id_hash)
        if session is None:
            raise ProtocolError(
                ErrorCode.SESSION_NOT_FOUND,
                "this registration session has ended or never existed; request a new code",
            )
        phone = session.phone
        if session.expires <= self._clock.now_ms():
            raise ProtocolError(ErrorCode.CODE_EXPIRED, "the code has expired; request a new one")
        max_attempts = self._settings.code_max_attempts
        # Counted before the check, atomically: concurrent guesses cannot share one attempt.
        attempts = await self._store.count_session_attempt(id_hash)
        if attempts == 0:  # the number registered in the meantime
            raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, "this registration session has ended")
        if attempts > max_attempts:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ATTEMPTS,
                f"{max_attempts} wrong codes in this session; request a new code",
            )
        if self._sms.owns_code:
            ok = await self._sms.check(phone, code)
        else:
            assert session.code_hash is not None
            ok = hmac.compare_digest(session.code_hash, await self._code_digest(phone, code))
        if not ok:
            left = max_attempts - attempts
            message = (
                f"wrong code; {left} attempt{'s' if left != 1 else ''} left"
                if left
                else "wrong code, and that was the last attempt; request a new code"
            )
            raise ProtocolError(ErrorCode.CODE_INVALID, message, attempts_left=left)
        if not await self._store.consume_registration_session(id_hash):
            raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, "this registration session has ended")
        # A code is good once: the sessions went first, so a replayed verify fails.
        name = name.strip()[:MAX_DEVICE_NAME]
        password = secrets.token_urlsafe(32)
        registration_id = secrets.randbelow(2**31 - 1) + 1
        existing = await self._store.get_account_by_phone(phone)
        old_devices = [] if existing is None else await self._store.list_devices(existing.id)
        account_id, device_id, replaced = await self._store.register(
            phone,
            hash_secret(password),
            registration_id,
            name,
            self._clock.now_ms(),
            str(uuid.uuid4()),
        )
        if replaced:
            await self._bus.account_changed(account_id)
            for old in old_devices:  # their connections end now, not at their next reconnect
                await self._bus.publish(account_id, old.device_id, DeviceEvent(revoked=True))
        log.info("registered device %s of an account (replaced=%s)", device_id, replaced)
        return Registration(account_id, device_id, registration_id, password, replaced)

    async def _code_digest(self, phone: str, code: str) -> bytes:
        # Keyed with a server secret: six digits are trivially brute-forced from a plain hash.
        # The secret lives in the database (or PORCH_SECRET), so every node shares it.
        if self._code_key is None:
            if self._settings.secret:
                self._code_key = self._settings.secret.encode("utf-8")
            else:
                self._code_key = await self._store.secret("code-hmac", secrets.token_bytes(32))
        return hmac.new(self._code_key, f"{phone}:{code}".encode(), hashlib.sha256).digest()

    # Authentication ------------------------------------------------------------------------

    async def authenticate(
        self, account_id: str, device_id: int, password: str, address: str = ""
    ) -> Principal:
        auth = await self._store.get_device_auth(account_id, device_id)
        expected = auth.password_hash if auth is not None else b"\0" * 32
        ok = hmac.compare_digest(expected, hash_secret(password))
        if auth is None or not ok:
            # Only failures count, so a busy address of honest devices is never slowed down.
            await self._limiter.hit("auth-failures", address, self._limits["auth_failures"])
            raise ProtocolError(ErrorCode.AUTH_FAILED, "unknown device or wrong password")
        return Principal(account_id, device_id)

    async def seen(self, principal: Principal) -> None:
        # Day granularity only: enough to show stale devices, too coarse to track anyone.
        day = self._clock.now_ms() // 86_400_000
        await self._store.touch_device(principal.account_id, principal.device_id, day)

    # Profile -------------------------------------------------------------------------------

    async def me(self, principal: Principal) -> tuple[Account, list[Device]]:
        account = await self._store.get_account(principal.account_id)
        if account is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "this account no longer exists")
        return account, await self._store.list_devices(principal.account_id)

    async def set_username(self, principal: Principal, raw: str | None) -> str | None:
        name = None if raw is None else normalize_username(raw)
        try:
            await self._store.set_username(principal.account_id, name)
        except UsernameTaken:
            raise ProtocolError(ErrorCode.USERNAME_TAKEN, f"@{name} is taken") from None
        return name

    async def set_discoverable(self, principal: Principal, discoverable: bool) -> None:
        await self._store.set_discoverable(principal.account_id, discoverable)

    async def delete_device(self, principal: Principal, device_id: int) -> None:
        if device_id == principal.device_id:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                "a device cannot remove itself; remove it from another device of the account",
            )
        if not await self._store.delete_device(principal.account_id, device_id):
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"this account has no device {device_id}; see its devices with `porch devices`",
            )
        await self._bus.account_changed(principal.account_id)
        await self._bus.publish(principal.account_id, device_id, DeviceEvent(revoked=True))

    # Directory -----------------------------------------------------------------------------

    async def lookup_phone(self, principal: Principal, raw_phone: str) -> str:
        await self._limiter.hit("directory", principal.account_id, self._limits["directory"])
        phone = normalize_phone(raw_phone)
        account = await self._store.get_account_by_phone(phone)
        # An undiscoverable number answers exactly like an unknown one.
        if account is None or not account.discoverable or account.master_key is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no discoverable account has this number")
        return account.id

    async def lookup_username(self, principal: Principal, raw: str) -> str:
        await self._limiter.hit("directory", principal.account_id, self._limits["directory"])
        account = await self._store.get_account_by_username(normalize_username(raw))
        if account is None or account.master_key is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no account has this username")
        return account.id

    async def public_profile(self, principal: Principal, account_id: str) -> Account:
        """What others may show for an account: its username, and its number only if it is
        discoverable (the same rule as lookup_phone). Counted against the directory limit,
        so it cannot be used to walk the account space faster than lookups can."""
        await self._limiter.hit("directory", principal.account_id, self._limits["directory"])
        account = await self._store.get_account(account_id)
        if account is None or account.master_key is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no account has this id")
        return account
