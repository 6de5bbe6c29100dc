"""Profile key at rest and AES-GCM sealing (docs/protocol.md, "Local storage at rest")."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from keyring.compat import properties

from porch.crypto.at_rest import (
    Sealer,
    forget_profile_key,
    keyring_usable,
    load_or_create_profile_key,
)
from porch.crypto.errors import DecryptError, ProfileKeyError
from porch.protocol.codec import b64encode


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A usable in-process backend, so tests never touch the real OS keyring.

    Subclassing registers it for keyring's backend discovery, so it reports itself non-viable
    (a RuntimeError from ``priority``, per keyring's contract) except while a test uses it;
    otherwise other tests would discover and use it.
    """

    active = False

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.active:
            raise RuntimeError("test-only backend")
        return 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear the env and pin keyring's "fail" backend, so a developer's real keyring is never
    written to (CI machines have only that backend anyway)."""
    monkeypatch.delenv("PORCH_PASSPHRASE", raising=False)
    monkeypatch.delenv("PORCH_KEYRING", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    MemoryKeyring.active = True
    backend = MemoryKeyring()
    keyring.set_keyring(backend)  # restored by the autouse fixture
    try:
        yield backend
    finally:
        MemoryKeyring.active = False


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    key, source = load_or_create_profile_key(profile)
    assert source == "file"
    assert len(key) == 32
    key_file = profile / "profile.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (profile / "key-source").read_text() == "file\n"
    assert load_or_create_profile_key(profile) == (key, "file")


def test_fail_backend_is_not_used(tmp_path: Path) -> None:
    # keyring's "fail" backend (all this machine has) cannot store anything.
    assert not keyring_usable()
    assert load_or_create_profile_key(tmp_path)[1] == "file"


def test_refuses_group_readable_key_file(tmp_path: Path) -> None:
    load_or_create_profile_key(tmp_path)
    (tmp_path / "profile.key").chmod(0o640)
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "bad_key"
    assert "chmod 600" in str(info.value)
    (tmp_path / "profile.key").chmod(0o604)
    with pytest.raises(ProfileKeyError):
        load_or_create_profile_key(tmp_path)


def test_interrupted_creation_reuses_private_key_file(tmp_path: Path) -> None:
    key, _ = load_or_create_profile_key(tmp_path)
    (tmp_path / "key-source").unlink()
    assert load_or_create_profile_key(tmp_path) == (key, "file")


def test_interrupted_creation_refuses_unsafe_key_file(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "profile.key", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b64encode(bytes(32)).encode())
    os.close(fd)
    os.chmod(tmp_path / "profile.key", 0o644)  # regardless of the umask
    with pytest.raises(ProfileKeyError):
        load_or_create_profile_key(tmp_path)


def test_replaced_key_file_detected(tmp_path: Path) -> None:
    load_or_create_profile_key(tmp_path)
    (tmp_path / "profile.key").write_text(b64encode(os.urandom(32)))
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "profile_locked"


def test_missing_key_file_says_what_to_do(tmp_path: Path) -> None:
    load_or_create_profile_key(tmp_path)
    (tmp_path / "profile.key").unlink()
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "bad_key"
    said = str(info.value)
    assert "profile.key is missing" in said and "from a backup" in said
    assert "Errno" not in said
    assert not (tmp_path / "profile.key").exists()  # never a new key over sealed secrets


def test_corrupt_key_file(tmp_path: Path) -> None:
    load_or_create_profile_key(tmp_path)
    (tmp_path / "profile.key").write_text("not base64!")
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "bad_key"


def test_passphrase_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORCH_PASSPHRASE", "correct horse")
    key, source = load_or_create_profile_key(tmp_path)
    assert source == "passphrase"
    assert not (tmp_path / "profile.key").exists()
    assert (tmp_path / "key-salt").exists()
    assert load_or_create_profile_key(tmp_path) == (key, "passphrase")

    monkeypatch.setenv("PORCH_PASSPHRASE", "wrong horse")
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "profile_locked"
    assert "PORCH_PASSPHRASE" in str(info.value)

    monkeypatch.delenv("PORCH_PASSPHRASE")
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "profile_locked"
    assert "PORCH_PASSPHRASE" in str(info.value)


def test_passphrase_salt_is_per_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORCH_PASSPHRASE", "same")
    key_a, _ = load_or_create_profile_key(tmp_path / "a")
    key_b, _ = load_or_create_profile_key(tmp_path / "b")
    assert key_a != key_b


def test_source_is_sticky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, _ = load_or_create_profile_key(tmp_path)
    monkeypatch.setenv("PORCH_PASSPHRASE", "later")
    assert load_or_create_profile_key(tmp_path) == (key, "file")


def test_keyring_source(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    assert keyring_usable()
    key, source = load_or_create_profile_key(tmp_path)
    assert source == "keyring"
    assert memory_keyring.store == {("porch", str(tmp_path.resolve())): b64encode(key)}
    assert not (tmp_path / "profile.key").exists()
    assert load_or_create_profile_key(tmp_path) == (key, "keyring")


def test_keyring_disabled_by_env(
    tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORCH_KEYRING", "0")
    assert not keyring_usable()
    assert load_or_create_profile_key(tmp_path)[1] == "file"
    assert memory_keyring.store == {}
    monkeypatch.setenv("PORCH_PASSPHRASE", "pw")
    assert load_or_create_profile_key(tmp_path / "other")[1] == "passphrase"
    assert memory_keyring.store == {}


def test_keyring_profile_locked_when_keyring_unavailable(
    tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_or_create_profile_key(tmp_path)
    monkeypatch.setenv("PORCH_KEYRING", "0")
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "profile_locked"
    monkeypatch.delenv("PORCH_KEYRING")
    memory_keyring.store.clear()
    with pytest.raises(ProfileKeyError) as info:
        load_or_create_profile_key(tmp_path)
    assert info.value.code == "profile_locked"


def test_unknown_key_source(tmp_path: Path) -> None:
    load_or_create_profile_key(tmp_path)
    (tmp_path / "key-source").write_text("tpm\n")
    with pytest.raises(ProfileKeyError):
        load_or_create_profile_key(tmp_path)


def test_seal_open_round_trip() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(b"olm pickle", aad=b"sessions/alice/1")
    assert sealed[0] == 0x01
    assert len(sealed) == 1 + 12 + len(b"olm pickle") + 16
    assert sealer.open(sealed, aad=b"sessions/alice/1") == b"olm pickle"
    assert sealer.seal(b"olm pickle") != sealer.seal(b"olm pickle")  # fresh nonce each time
    assert sealer.open(sealer.seal(b"")) == b""


def test_open_rejects_tampering() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(b"secret", aad=b"row-1")
    with pytest.raises(DecryptError):
        sealer.open(sealed, aad=b"row-2")
    with pytest.raises(DecryptError):
        Sealer(os.urandom(32)).open(sealed, aad=b"row-1")
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptError) as info:
            sealer.open(bytes(tampered), aad=b"row-1")
        assert info.value.code == "decrypt_failed"
    for short in (b"", b"\x01", sealed[:28]):
        with pytest.raises(DecryptError):
            sealer.open(short, aad=b"row-1")


def test_sealer_key_length() -> None:
    with pytest.raises(ProfileKeyError):
        Sealer(bytes(16))


def test_subkeys() -> None:
    key = os.urandom(32)
    sealer = Sealer(key)
    pickle_key = sealer.subkey("olm-pickle")
    assert len(pickle_key) == 32
    assert pickle_key != key
    assert pickle_key == Sealer(key).subkey("olm-pickle")
    assert pickle_key != sealer.subkey("other")
    assert repr(sealer) == "Sealer(<key hidden>)"


def test_forget_profile_key_erases_every_source(
    tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_keyring = tmp_path / "keyring"
    assert load_or_create_profile_key(in_keyring)[1] == "keyring"
    assert memory_keyring.store
    forget_profile_key(in_keyring)
    assert memory_keyring.store == {} and list(in_keyring.iterdir()) == []
    monkeypatch.setenv("PORCH_PASSPHRASE", "correct horse")
    MemoryKeyring.active = False
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    with_passphrase = tmp_path / "passphrase"
    assert load_or_create_profile_key(with_passphrase)[1] == "passphrase"
    (with_passphrase / "mine.txt").write_text("kept")
    forget_profile_key(with_passphrase)
    assert [p.name for p in with_passphrase.iterdir()] == ["mine.txt"]
    forget_profile_key(tmp_path / "never-made")  # nothing there: nothing to do
