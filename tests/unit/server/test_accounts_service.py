"""AccountService with a real SQLite store, the console SMS outbox and a controlled clock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.bus.memory import MemoryBus
from porch.server.providers.sms import ConsoleSms
from porch.server.ratelimit import MemoryRateLimiter
from porch.server.services.accounts import (
    AccountService,
    Principal,
    Registration,
    hash_secret,
    normalize_phone,
    normalize_username,
)
from porch.server.settings import Settings
from porch.server.store.sqlite import SqliteStore

PHONE = "+14155550100"
OTHER = "+14155550101"
ADDR = "192.0.2.1"


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@dataclass
class Env:
    service: AccountService
    store: SqliteStore
    bus: MemoryBus
    clock: FakeClock
    settings: Settings
    outbox: Path

    def last_code(self, phone: str) -> str:
        lines = self.outbox.read_text(encoding="utf-8").splitlines()
        codes = [json.loads(x)["code"] for x in lines if json.loads(x)["phone"] == phone]
        assert codes, f"no code was sent to {phone}"
        return str(codes[-1])

    def wrong_code(self, phone: str) -> str:
        return f"{(int(self.last_code(phone)) + 1) % 1_000_000:06d}"


async def _env(tmp_path: Path, **overrides: object) -> AsyncIterator[Env]:
    settings = Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]
    store = SqliteStore(settings.sqlite_path)
    bus = MemoryBus()
    clock = FakeClock()
    outbox = tmp_path / "sms-outbox.jsonl"
    service = AccountService(
        store,
        bus,
        ConsoleSms(outbox),
        MemoryRateLimiter(clock),
        clock,
        settings,
    )
    async with store:
        yield Env(service, store, bus, clock, settings, outbox)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in _env(tmp_path):
        yield e


def _code_of(exc: pytest.ExceptionInfo[ProtocolError]) -> ErrorCode:
    return exc.value.code


# Normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 415-555-0100", "+14155550100"),
        ("+1 (415) 555 0100", "+14155550100"),
        ("+442079460958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize_phone_accepts(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "14155550100",  # no leading +
        "4155550100",
        "",
        "+",
        "+1",
        "+abc",
        "+1415555010000000000000",  # too long
        "+10000000000",  # not a real number
        "+999123456",
        None,
        14155550100,
    ],
)
def test_normalize_phone_rejects(raw: object) -> None:
    with pytest.raises(ProtocolError) as info:
        normalize_phone(raw)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.INVALID_PHONE
    assert info.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("@alice", "alice"),
        ("Alice_99", "alice_99"),
        ("abc", "abc"),
        ("a" * 32, "a" * 32),
    ],
)
def test_normalize_username_accepts(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize(
    "raw", ["ab", "a" * 33, "1abc", "_abc", "al ice", "al-ice", "alice!", "", "@", "ålice"]
)
def test_normalize_username_rejects(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        normalize_username(raw)
    assert info.value.code == ErrorCode.INVALID_USERNAME


# Registration --------------------------------------------------------------------------------


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def test_request_code_then_verify(env: Env) -> None:
    sent = await env.service.request_code("+1 415 555 0100", ADDR)
    assert sent.expires_in == env.settings.code_ttl_seconds
    assert sent.attempts_left == env.settings.code_max_attempts
    assert sent.next_code_in == env.settings.code_interval_seconds
    assert len(sent.session_id) == 43
    code = env.last_code(PHONE)  # the normalised number got the code
    assert len(code) == 6 and code.isdigit()
    pending = await env.store.get_registration_session(_hash(sent.session_id))
    assert pending is not None and pending.phone == PHONE and pending.attempts == 0
    assert pending.code_hash is not None and code.encode() not in pending.code_hash
    assert pending.expires == env.clock.now_ms() + sent.expires_in * 1000

    reg = await env.service.verify(sent.session_id, code, "  my laptop  ", ADDR)
    assert reg.device_id == 1
    assert reg.replaced is False
    assert 1 <= reg.registration_id < 2**31
    assert len(reg.password) >= 40
    assert await env.store.get_registration_session(_hash(sent.session_id)) is None
    devices = await env.store.list_devices(reg.account_id)
    assert devices[0].name == "my laptop"
    auth = await env.store.get_device_auth(reg.account_id, 1)
    assert auth is not None and auth.password_hash == hash_secret(reg.password)

    principal = await env.service.authenticate(reg.account_id, 1, reg.password)
    assert principal == Principal(reg.account_id, 1)


async def test_code_is_good_once(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    code = env.last_code(PHONE)
    await env.service.verify(sent.session_id, code, "", ADDR)
    with pytest.raises(ProtocolError) as info:
        await env.service.verify(sent.session_id, code, "", ADDR)
    assert info.value.code == ErrorCode.SESSION_NOT_FOUND


async def test_registering_ends_every_session_of_the_number(env: Env) -> None:
    other = await env.service.request_code(PHONE, "198.51.100.7")
    env.clock.advance(env.settings.code_interval_seconds)
    mine = await env.service.request_code(PHONE, ADDR)
    await env.service.verify(mine.session_id, env.last_code(PHONE), "", ADDR)
    assert await env.store.get_registration_session(_hash(other.session_id)) is None


async def test_reregistration_replaces_and_notifies(env: Env) -> None:
    changed: list[str] = []
    env.bus.on_account_changed(changed.append)
    first = await _register(env)
    assert changed == []
    env.clock.advance(env.settings.code_interval_seconds)
    second = await _register(env)
    assert second.replaced is True
    assert second.account_id == first.account_id
    assert changed == [first.account_id]
    with pytest.raises(ProtocolError) as info:
        await env.service.authenticate(first.account_id, 1, first.password)
    assert info.value.code == ErrorCode.AUTH_FAILED


async def test_a_new_code_in_the_session_replaces_the_old_one(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    old = env.last_code(PHONE)
    with pytest.raises(ProtocolError):
        await env.service.verify(sent.session_id, env.wrong_code(PHONE), "", ADDR)
    env.clock.advance(env.settings.code_interval_seconds)
    again = await env.service.request_code(PHONE, ADDR, sent.session_id)
    assert again.session_id == sent.session_id  # continued, with its attempts restarted
    pending = await env.store.get_registration_session(_hash(sent.session_id))
    assert pending is not None and pending.attempts == 0
    new = env.last_code(PHONE)
    if old != new:
        with pytest.raises(ProtocolError):
            await env.service.verify(sent.session_id, old, "", ADDR)
    await env.service.verify(sent.session_id, new, "", ADDR)


async def test_an_unknown_session_id_starts_a_new_session(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR, "x" * 43)
    assert sent.session_id != "x" * 43
    assert await env.store.get_registration_session(_hash(sent.session_id)) is not None


async def test_another_numbers_session_is_not_continued(env: Env) -> None:
    mine = await env.service.request_code(OTHER, ADDR)
    sent = await env.service.request_code(PHONE, ADDR, mine.session_id)
    assert sent.session_id != mine.session_id


async def test_wrong_code_counts_attempts(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    max_attempts = env.settings.code_max_attempts
    for i in range(1, max_attempts + 1):
        with pytest.raises(ProtocolError) as info:
            await env.service.verify(sent.session_id, env.wrong_code(PHONE), "", ADDR)
        assert info.value.code == ErrorCode.CODE_INVALID
        left = max_attempts - i
        assert info.value.details["attempts_left"] == left
        if left > 1:
            assert f"{left} attempts left" in info.value.message
        elif left == 1:
            assert "1 attempt left" in info.value.message
        else:
            assert "last attempt" in info.value.message
        pending = await env.store.get_registration_session(_hash(sent.session_id))
        assert pending is not None and pending.attempts == i
    # One over: the session's code is burnt, even the right one no longer works.
    with pytest.raises(ProtocolError) as info:
        await env.service.verify(sent.session_id, env.last_code(PHONE), "", ADDR)
    assert info.value.code == ErrorCode.TOO_MANY_ATTEMPTS
    assert "request a new code" in info.value.message


async def test_wrong_guesses_in_one_session_leave_another_alone(tmp_path: Path) -> None:
    """Issue 6: ten bogus verifications from anywhere used to lock the owner out."""
    async for env in _env(tmp_path, limit_register_per_address="1000/3600"):
        attacker = await env.service.request_code(PHONE, "198.51.100.66")
        for i in range(10):
            with pytest.raises(ProtocolError) as info:
                await env.service.verify(attacker.session_id, "000000", "", f"203.0.113.{i}")
            assert info.value.code in (ErrorCode.CODE_INVALID, ErrorCode.TOO_MANY_ATTEMPTS)
        env.clock.advance(env.settings.code_interval_seconds)
        owner = await env.service.request_code(PHONE, ADDR)
        code = env.last_code(PHONE)
        assert owner.attempts_left == env.settings.code_max_attempts
        reg = await env.service.verify(owner.session_id, code, "", ADDR)
        assert reg.device_id == 1


async def test_code_requests_for_a_number_wait_longer_and_longer(env: Env) -> None:
    """Issue 6: five code requests from anywhere used to wall the number off for an hour."""
    base = env.settings.code_interval_seconds
    cap = env.settings.code_interval_max_seconds
    waits = []
    for i in range(8):  # each from another address: no per-address limit is involved
        sent = await env.service.request_code(PHONE, f"192.0.2.{i}")
        waits.append(sent.next_code_in)
        with pytest.raises(ProtocolError) as info:
            await env.service.request_code(PHONE, f"198.51.100.{i}")
        assert info.value.code == ErrorCode.RATE_LIMITED
        assert info.value.details["retry_after"] == sent.next_code_in
        env.clock.advance(sent.next_code_in - 1)
        with pytest.raises(ProtocolError):
            await env.service.request_code(PHONE, f"198.51.100.{i}")
        env.clock.advance(1)
    assert waits == [min(base * 2**i, cap) for i in range(8)]
    assert waits[:4] == [30, 60, 120, 240] and max(waits) == cap < 3600
    # After the interval the owner still gets a code and registers.
    owner = await env.service.request_code(PHONE, ADDR)
    await env.service.verify(owner.session_id, env.last_code(PHONE), "", ADDR)
    await env.service.request_code(OTHER, ADDR)  # another number was never affected


async def test_the_interval_starts_over_after_a_quiet_spell(env: Env) -> None:
    for _ in range(4):
        sent = await env.service.request_code(PHONE, ADDR)
        env.clock.advance(sent.next_code_in)
    assert sent.next_code_in == 240
    env.clock.advance(env.settings.code_quiet_seconds)
    sent = await env.service.request_code(PHONE, ADDR)
    assert sent.next_code_in == env.settings.code_interval_seconds


async def test_retry_messages_are_for_people(env: Env) -> None:
    for _ in range(4):
        sent = await env.service.request_code(PHONE, ADDR)
        env.clock.advance(sent.next_code_in)
    await env.service.request_code(PHONE, ADDR)  # the next one waits 8 minutes
    env.clock.advance(4 * 60)
    with pytest.raises(ProtocolError) as info:
        await env.service.request_code(PHONE, ADDR)
    assert info.value.details["retry_after"] == 240
    assert info.value.message.endswith("try again in 4 minutes")
    for internal in ("code-phone", "code_phone", "code-address", "verify-phone", "scope"):
        assert internal not in info.value.message


async def test_address_limit_message_names_no_limiter(tmp_path: Path) -> None:
    async for env in _env(tmp_path, limit_code_per_address="1/3600"):
        await env.service.request_code(PHONE, ADDR)
        with pytest.raises(ProtocolError) as info:
            await env.service.request_code(OTHER, ADDR)
        assert info.value.code == ErrorCode.RATE_LIMITED
        assert info.value.message == (
            "too many code requests from this address; try again in 1 hour"
        )


async def test_right_code_after_some_wrong_ones(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    for _ in range(env.settings.code_max_attempts - 1):
        with pytest.raises(ProtocolError):
            await env.service.verify(sent.session_id, env.wrong_code(PHONE), "", ADDR)
    reg = await env.service.verify(sent.session_id, env.last_code(PHONE), "", ADDR)
    assert reg.device_id == 1


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12 456",
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth 123456
        "\u00b2\u00b3\u2074\u2075\u2076\u2077",  # superscript 234567
    ],
)
async def test_malformed_code(env: Env, code: str) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    with pytest.raises(ProtocolError) as info:
        await env.service.verify(sent.session_id, code, "", ADDR)
    assert info.value.code == ErrorCode.CODE_INVALID
    pending = await env.store.get_registration_session(_hash(sent.session_id))
    assert pending is not None and pending.attempts == 0  # not counted as a guess


@pytest.mark.parametrize("session_id", ["", "short", "a" * 42 + "!", "a" * 44])
async def test_malformed_session_id(env: Env, session_id: str) -> None:
    with pytest.raises(ProtocolError) as info:
        await env.service.verify(session_id, "123456", "", ADDR)
    assert info.value.code == ErrorCode.BAD_REQUEST


async def test_verify_without_request(env: Env) -> None:
    with pytest.raises(ProtocolError) as info:
        await env.service.verify("a" * 43, "123456", "", ADDR)
    assert info.value.code == ErrorCode.SESSION_NOT_FOUND


async def test_code_expires(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    code = env.last_code(PHONE)
    env.clock.advance(env.settings.code_ttl_seconds)
    with pytest.raises(ProtocolError) as info:
        await env.service.verify(sent.session_id, code, "", ADDR)
    assert info.value.code == ErrorCode.CODE_EXPIRED
    assert (await env.store.sweep(env.clock.now_ms())).verifications >= 1
    assert await env.store.get_registration_session(_hash(sent.session_id)) is None


async def test_code_valid_just_before_expiry(env: Env) -> None:
    sent = await env.service.request_code(PHONE, ADDR)
    env.clock.advance(env.settings.code_ttl_seconds - 0.001)
    reg = await env.service.verify(sent.session_id, env.last_code(PHONE), "", ADDR)
    assert reg.device_id == 1


async def test_invalid_phone_is_rejected_before_sending(env: Env) -> None:
    with pytest.raises(ProtocolError) as info:
        await env.service.request_code("4155550100", ADDR)
    assert info.value.code == ErrorCode.INVALID_PHONE
    assert not env.outbox.exists()


async def test_code_requests_per_address_are_limited(tmp_path: Path) -> None:
    async for env in _env(tmp_path, limit_code_per_address="2/60"):
        await env.service.request_code(PHONE, ADDR)
        await env.service.request_code(OTHER, ADDR)
        with pytest.raises(ProtocolError) as info:
            await env.service.request_code("+14155550102", ADDR)
        assert info.value.code == ErrorCode.RATE_LIMITED


async def test_verify_attempts_per_address_are_limited(tmp_path: Path) -> None:
    async for env in _env(tmp_path, limit_register_per_address="2/60"):
        sent = await env.service.request_code(PHONE, ADDR)
        for _ in range(2):
            with pytest.raises(ProtocolError):
                await env.service.verify(sent.session_id, env.wrong_code(PHONE), "", ADDR)
        with pytest.raises(ProtocolError) as info:
            await env.service.verify(sent.session_id, env.last_code(PHONE), "", ADDR)
        assert info.value.code == ErrorCode.RATE_LIMITED
        # From another address the owner's own session still works.
        reg = await env.service.verify(sent.session_id, env.last_code(PHONE), "", "192.0.2.9")
        assert reg.device_id == 1


# Authentication and profile ------------------------------------------------------------------


async def _register(env: Env, phone: str = PHONE) -> Registration:
    sent = await env.service.request_code(phone, ADDR)
    return await env.service.verify(sent.session_id, env.last_code(phone), "", ADDR)


async def _registered(env: Env, phone: str = PHONE) -> tuple[str, str]:
    reg = await _register(env, phone)
    return reg.account_id, reg.password


async def test_authenticate_rejects_wrong_password_and_unknown_device(env: Env) -> None:
    account_id, password = await _registered(env)
    for account, device, pw in [
        (account_id, 1, password + "x"),
        (account_id, 1, ""),
        (account_id, 2, password),
        ("00000000-0000-0000-0000-000000000000", 1, password),
    ]:
        with pytest.raises(ProtocolError) as info:
            await env.service.authenticate(account, device, pw)
        assert info.value.code == ErrorCode.AUTH_FAILED
        assert info.value.message == "unknown device or wrong password"  # no hint which


async def test_usernames_and_directory(env: Env) -> None:
    alice_id, _ = await _registered(env, PHONE)
    bob_id, _ = await _registered(env, OTHER)
    alice, bob = Principal(alice_id, 1), Principal(bob_id, 1)
    assert await env.service.set_username(alice, "@Alice") == "alice"
    with pytest.raises(ProtocolError) as info:
        await env.service.set_username(bob, "ALICE")
    assert info.value.code == ErrorCode.USERNAME_TAKEN
    with pytest.raises(ProtocolError) as info:
        await env.service.set_username(bob, "b")
    assert info.value.code == ErrorCode.INVALID_USERNAME
    assert await env.service.set_username(alice, None) is None

    # Without keys an account is not found, by number or by name.
    await env.service.set_username(alice, "alice")
    for lookup in (
        env.service.lookup_phone(bob, PHONE),
        env.service.lookup_username(bob, "alice"),
    ):
        with pytest.raises(ProtocolError) as info:
            await lookup
        assert info.value.code == ErrorCode.NOT_FOUND
    await env.store.set_identity(alice_id, 1, "master", "c", "e", "s")
    assert await env.service.lookup_phone(bob, "+1 415 555 0100") == alice_id
    assert await env.service.lookup_username(bob, "@alice") == alice_id
    await env.service.set_discoverable(alice, False)
    with pytest.raises(ProtocolError) as info:
        await env.service.lookup_phone(bob, PHONE)
    assert info.value.code == ErrorCode.NOT_FOUND
    assert await env.service.lookup_username(bob, "alice") == alice_id


async def test_delete_device_rules(env: Env) -> None:
    account_id, _ = await _registered(env)
    me = Principal(account_id, 1)
    with pytest.raises(ProtocolError) as info:
        await env.service.delete_device(me, 1)
    assert info.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(ProtocolError) as info:
        await env.service.delete_device(me, 2)
    assert info.value.code == ErrorCode.NOT_FOUND


async def test_seen_records_the_day(env: Env) -> None:
    account_id, _ = await _registered(env)
    env.clock.advance(3 * 86_400)
    await env.service.seen(Principal(account_id, 1))
    account, devices = await env.service.me(Principal(account_id, 1))
    assert account.phone == PHONE
    assert devices[0].last_seen_day == env.clock.now_ms() // 86_400_000
