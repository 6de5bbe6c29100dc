"""Registering a profile: the phone number's verification, then this device's keys.

Registration makes device 1 of the account, generates the Olm account, the master key that
signs device keys (docs/protocol.md, "Keys") and the first one-time keys, and uploads them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import phonenumbers

from porch.client.api import Credentials, HttpApi
from porch.client.core.state import ONE_TIME_KEYS_TARGET
from porch.client.errors import ClientCode, ProfileError, ServerError, UsageError
from porch.client.linking import publish_device_list
from porch.client.ownership import ProfileLock
from porch.client.profile import ProfileConfig, ensure_private_dir
from porch.client.profile import open_store as _open_store
from porch.client.transport import NetworkTransport, Transport
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import ListedDevice, MasterKey

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,31}$")  # as the server checks it (accounts.py)


def normalize_phone(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise UsageError(f"{raw!r} is not a phone number; use E.164, like +14155550100") from None
    if not phonenumbers.is_valid_number(number):
        raise UsageError(f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


async def register(
    server: str,
    phone: str,
    read_code: Callable[[], Awaitable[str]],
    profile_dir: Path,
    *,
    name: str = "",
    username: str | None = None,
    transport: Transport | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ProfileConfig:
    """Register this machine as device 1 of the phone number's account, in profile_dir.

    Registering a number that already has an account replaces all its devices. A wrong
    code asks again (read_code is called once per try) while the registration session
    has attempts left; the server counts them (docs/protocol.md, "Registration")."""
    phone = normalize_phone(phone)
    if username is not None and not USERNAME_RE.match(username.lstrip("@").lower()):
        # Checked before a code is sent: the server would refuse it after registering.
        raise UsageError(
            "usernames are 3-32 characters: a letter, then letters, digits or _; "
            "choose another --username"
        )
    # Not under a running `porch chat` or `porch recv`: it would go on as the old identity
    # with the deleted database, and relays would hand their messages to it (ownership.py).
    lock = ProfileLock(profile_dir)
    with contextlib.suppress(OSError):  # a read-only or missing profile fails later
        if Path(profile_dir).is_dir() and not lock.try_acquire():
            raise ProfileError(
                f"the profile {profile_dir} is in use by another porch process (porch chat "
                "or porch recv, say); close it, then register again",
                code=ClientCode.PROFILE_LOCKED,
            )
    try:
        return await _register(
            server, phone, read_code, profile_dir, name, username, transport, progress
        )
    finally:
        lock.release()


async def _register(
    server: str,
    phone: str,
    read_code: Callable[[], Awaitable[str]],
    profile_dir: Path,
    name: str,
    username: str | None,
    transport: Transport | None,
    progress: Callable[[str], None],
) -> ProfileConfig:
    transport = transport or NetworkTransport()
    api = HttpApi(server, transport=transport.http_transport())
    try:
        session = await api.request_code(phone)
        progress(
            f"A verification code was sent to {phone}; {session.attempts_left} attempts to type it."
        )
        reg = None
        while reg is None:  # ends: every wrong code uses one of the session's attempts
            code = (await read_code()).strip().replace(" ", "").replace("-", "")
            try:
                reg = await api.verify(session.session_id, code, name)
            except ServerError as exc:
                left = exc.details.get("attempts_left")
                if exc.code != "code_invalid" or not isinstance(left, int) or left < 1:
                    raise
                text = str(exc)
                progress(f"{text[:1].upper()}{text[1:]}; type the code again.")
    finally:
        await api.aclose()
    ensure_private_dir(profile_dir)
    for stale in profile_dir.glob("client.db*"):
        stale.unlink()  # a new registration is a new identity: old sessions are void
    (profile_dir / "profile.json").unlink(missing_ok=True)
    unclaimed: ServerError | None = None  # the username, when the server refused it
    store, sealer = _open_store(profile_dir)
    try:
        machine = OlmMachine.create(sealer.subkey("olm-pickle"))
        master = MasterKey.generate()
        one_time_keys = machine.generate_one_time_keys(ONE_TIME_KEYS_TARGET)
        fallback = machine.generate_fallback_key()
        with store.transaction():
            store.put_secret("password", reg.password.encode())
            store.put_secret("master_key", master.private_bytes())
            store.put_pickle("olm_account", machine.pickle_account())
        signature = master.sign_device(
            reg.account_id,
            reg.device_id,
            reg.registration_id,
            machine.curve25519,
            machine.ed25519,
        )
        creds = Credentials(reg.account_id, reg.device_id, reg.password)
        api = HttpApi(server, creds, transport.http_transport())
        try:
            await api.upload_keys(
                identity={
                    "master_key": master.public_b64,
                    "curve25519": machine.curve25519,
                    "ed25519": machine.ed25519,
                    "signature": signature,
                },
                one_time_keys=one_time_keys,
                fallback_key=fallback,
            )
            # The account's first signed device list: version 1, this device (spec C).
            await publish_device_list(
                api,
                master,
                reg.account_id,
                add=ListedDevice(reg.device_id, reg.registration_id, machine.ed25519),
            )
            if username:
                try:
                    username = await api.set_username(username)
                except ServerError as exc:  # taken: the account exists all the same
                    unclaimed, username = exc, None
        finally:
            await api.aclose()
    finally:
        store.close()
    config = ProfileConfig(
        server=server,
        account_id=reg.account_id,
        device_id=reg.device_id,
        registration_id=reg.registration_id,
        phone=phone,
        username=username,
    )
    config.save(profile_dir)  # written last: a profile.json means a complete registration
    if unclaimed is not None:
        raise ServerError(
            unclaimed.code,
            f"registered {phone} as account {reg.account_id} in {profile_dir}, but "
            f"{unclaimed}; others can reach you by phone number (a username is claimed "
            "when registering)",
            unclaimed.status,
        )
    return config
