"""The profile key that seals a client's local secrets at rest (docs/protocol.md,
"Local storage at rest").

A client profile directory holds an SQLite database whose secret columns (Olm pickles, the
master key) are sealed with one 32-byte profile key. This module finds or creates that key and
provides the AES-256-GCM sealing used for those columns. The key comes from, in order of
preference at creation time:

1. the OS keyring, when a real backend is available and ``PORCH_KEYRING`` is not ``0``;
2. a passphrase from ``PORCH_PASSPHRASE``, stretched with scrypt (RFC 7914);
3. a ``profile.key`` file readable only by the owner, as SSH does with private keys.

The choice is written to ``key-source`` so later opens use the same source, and ``key-check``
holds a sealed constant so a wrong passphrase or a replaced keyring entry is reported as such
instead of surfacing later as undecryptable data.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from porch.crypto.errors import BAD_KEY, PROFILE_LOCKED, DecryptError, ProfileKeyError
from porch.protocol.codec import b64decode, b64encode

KEY_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
SEAL_VERSION: Final = 0x01

KEYRING_SERVICE: Final = "porch"
ENV_KEYRING: Final = "PORCH_KEYRING"
ENV_PASSPHRASE: Final = "PORCH_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

KEY_FILE: Final = "profile.key"
SALT_FILE: Final = "key-salt"
SOURCE_FILE: Final = "key-source"
CHECK_FILE: Final = "key-check"
CHECK_PLAINTEXT: Final = b"porch-profile-check"

# Label for Sealer.subkey giving the vodozemac pickle key (docs/protocol.md).
OLM_PICKLE_LABEL: Final = "olm-pickle"

SOURCE_KEYRING: Final = "keyring"
SOURCE_PASSPHRASE: Final = "passphrase"  # noqa: S105 (a source name, not a secret)
SOURCE_FILE_KEY: Final = "file"

# scrypt cost from RFC 7914 section 2's interactive-login guidance (N=2^15, r=8: 32 MiB,
# well under a second), paid once per process start.
SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_LEN: Final = 16


class Sealer:
    """AES-256-GCM sealing with the profile key: ``0x01 || nonce(12) || ciphertext || tag(16)``.

    Nonces are random; with 96-bit random nonces NIST SP 800-38D allows 2^32 seals per key,
    far more than a local profile performs. ``aad`` binds a sealed value to its context (for
    example the table and row it is stored in) so values cannot be swapped between rows.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ProfileKeyError(f"profile key must be {KEY_LEN} bytes", code=BAD_KEY)
        self._key = bytes(key)
        self._aead = AESGCM(self._key)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return bytes([SEAL_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes = b"") -> bytes:
        if len(sealed) < 1 + NONCE_LEN + TAG_LEN:
            raise DecryptError("sealed value is too short")
        if sealed[0] != SEAL_VERSION:
            raise DecryptError(f"unknown sealed value version {sealed[0]}")
        nonce = sealed[1 : 1 + NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, sealed[1 + NONCE_LEN :], aad)
        except InvalidTag:
            raise DecryptError("sealed value failed authentication") from None

    def subkey(self, label: str) -> bytes:
        """A 32-byte key for another purpose: HKDF-SHA256 (RFC 5869), no salt,
        info = ``b"porch/" + label``. Used e.g. for the vodozemac pickle key, so that no key is
        used by two different algorithms."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_LEN,
            salt=None,
            info=b"porch/" + label.encode("utf-8"),
        )
        return hkdf.derive(self._key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"


def _keyring() -> ModuleType:
    """keyring, imported when first needed: it costs 40 ms of every command's start-up, and
    profiles with a passphrase or key file never use it."""
    import keyring
    import keyring.errors

    return keyring


def keyring_usable() -> bool:
    """Whether the OS keyring should be used: not disabled, and a real backend is active.

    keyring falls back to its ``fail`` backend (priority 0) on headless machines and may be
    configured with the ``null`` backend; neither can store anything.
    """
    if os.environ.get(ENV_KEYRING) == "0":
        return False
    keyring = _keyring()
    try:
        backend = keyring.get_keyring()
        module = type(backend).__module__
        priority = float(backend.priority)
    except Exception:  # a broken backend configuration means "no keyring", not a crash
        return False
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return False
    return priority > 0


def _write_private(path: Path, data: bytes) -> None:
    """Write a small file atomically (temp file + rename) with mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = b64decode(text.strip())
    except ValueError:
        raise ProfileKeyError(f"profile key in {where} is not base64", code=BAD_KEY) from None
    if len(key) != KEY_LEN:
        raise ProfileKeyError(f"profile key in {where} is not {KEY_LEN} bytes", code=BAD_KEY)
    return key


# Keyring ----------------------------------------------------------------------------------


def _load_keyring(profile: Path) -> bytes:
    if not keyring_usable():
        raise ProfileKeyError(
            f"the profile key of {profile} is stored in the OS keyring, which is unavailable "
            f"(or disabled by {ENV_KEYRING}=0); unlock or enable the keyring",
            code=PROFILE_LOCKED,
        )
    keyring = _keyring()
    try:
        value = keyring.get_password(KEYRING_SERVICE, str(profile))
    except keyring.errors.KeyringError as exc:
        raise ProfileKeyError(f"cannot read the OS keyring: {exc}", code=PROFILE_LOCKED) from None
    if value is None:
        raise ProfileKeyError(
            f"the OS keyring has no profile key for {profile}", code=PROFILE_LOCKED
        )
    return _decode_key(str(value), "the OS keyring")


def _create_keyring(profile: Path) -> bytes | None:
    key = os.urandom(KEY_LEN)
    keyring = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, str(profile), b64encode(key))
    except keyring.errors.KeyringError:
        return None  # e.g. a locked keyring the user declined to unlock: try the next source
    return key


# Passphrase -------------------------------------------------------------------------------


def _passphrase() -> str | None:
    value = os.environ.get(ENV_PASSPHRASE)
    return value if value else None


def _stretch(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_LEN, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def _load_passphrase(profile: Path) -> bytes:
    passphrase = _passphrase()
    if passphrase is None:
        raise ProfileKeyError(
            f"the profile {profile} is protected by a passphrase: set {ENV_PASSPHRASE}",
            code=PROFILE_LOCKED,
        )
    try:
        salt = b64decode((profile / SALT_FILE).read_text("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProfileKeyError(f"cannot read {SALT_FILE}: {exc}", code=BAD_KEY) from None
    if len(salt) != SALT_LEN:
        raise ProfileKeyError(f"{SALT_FILE} is not {SALT_LEN} bytes", code=BAD_KEY)
    return _stretch(passphrase, salt)


def _create_passphrase(profile: Path, passphrase: str) -> bytes:
    # No data has been sealed before key-source exists, so a salt left by an interrupted
    # creation can safely be replaced.
    salt = os.urandom(SALT_LEN)
    _write_private(profile / SALT_FILE, (b64encode(salt) + "\n").encode("ascii"))
    return _stretch(passphrase, salt)


# Key file ---------------------------------------------------------------------------------


def _load_file(profile: Path) -> bytes:
    path = profile / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        # key-source says the key is in this file: without it the sealed secrets stay sealed.
        raise ProfileKeyError(
            f"{path} is missing, and this profile's secrets are sealed with the key it held; "
            f"put it back from a backup, or register again into a new profile",
            code=BAD_KEY,
        ) from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ProfileKeyError(f"cannot open {path}: {why}", code=BAD_KEY) from None
    try:
        mode = os.fstat(fd).st_mode
        # POSIX permissions only; on Windows st_mode does not reflect ACLs.
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ProfileKeyError(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {path}",
                code=BAD_KEY,
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ProfileKeyError(f"{path} is not base64 text", code=BAD_KEY) from None
    return _decode_key(text, str(path))


def _create_file(profile: Path) -> bytes:
    path = profile / KEY_FILE
    key = os.urandom(KEY_LEN)
    try:
        # O_EXCL: never overwrite a key that may already seal data, and never follow a planted
        # symlink; the mode applies atomically at creation, with no window of wider access.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Left by an interrupted creation or a concurrent process: use it if it is safe.
        return _load_file(profile)
    try:
        os.write(fd, (b64encode(key) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


# Entry point ------------------------------------------------------------------------------


def _check_value_matches(profile: Path, key: bytes) -> bool:
    try:
        sealed = b64decode((profile / CHECK_FILE).read_text("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProfileKeyError(f"cannot read {CHECK_FILE}: {exc}", code=BAD_KEY) from None
    try:
        return Sealer(key).open(sealed) == CHECK_PLAINTEXT
    except DecryptError:
        return False


def load_or_create_profile_key(profile_dir: Path) -> tuple[bytes, str]:
    """Return ``(key, source)`` for a profile, creating the key on first use.

    ``source`` is ``"keyring"``, ``"passphrase"`` or ``"file"``. Raises ProfileKeyError with
    code ``"profile_locked"`` when the key exists but cannot be unlocked now (wrong or missing
    passphrase, keyring unavailable) and ``"bad_key"`` when key material is corrupt or unsafe.
    """
    profile = profile_dir.expanduser().resolve()
    profile.mkdir(mode=0o700, parents=True, exist_ok=True)
    source_path = profile / SOURCE_FILE

    if source_path.exists():
        source = source_path.read_text("ascii").strip()
        if source == SOURCE_KEYRING:
            key = _load_keyring(profile)
        elif source == SOURCE_PASSPHRASE:
            key = _load_passphrase(profile)
        elif source == SOURCE_FILE_KEY:
            key = _load_file(profile)
        else:
            raise ProfileKeyError(f"unknown key source {source!r} in {source_path}")
        if not _check_value_matches(profile, key):
            if source == SOURCE_PASSPHRASE:
                message = (
                    f"{ENV_PASSPHRASE} does not unlock the profile {profile}; set it to the "
                    "passphrase the profile was created with"
                )
            else:
                message = f"the profile key from the {source} does not unlock {profile}"
            raise ProfileKeyError(message, code=PROFILE_LOCKED)
        return key, source

    created: tuple[bytes, str] | None = None
    if keyring_usable():
        keyring_key = _create_keyring(profile)
        if keyring_key is not None:
            created = (keyring_key, SOURCE_KEYRING)
    if created is None:
        passphrase = _passphrase()
        if passphrase is not None:
            created = (_create_passphrase(profile, passphrase), SOURCE_PASSPHRASE)
        else:
            created = (_create_file(profile), SOURCE_FILE_KEY)
    key, source = created
    _write_private(
        profile / CHECK_FILE, (b64encode(Sealer(key).seal(CHECK_PLAINTEXT)) + "\n").encode()
    )
    # Written last: its presence means creation finished, so a crash before it simply
    # restarts creation on the next open.
    _write_private(source_path, (source + "\n").encode("ascii"))
    return key, source


def forget_profile_key(profile_dir: Path) -> None:
    """Erase a profile's key material: its key files and, for a keyring profile, the
    keyring's entry (a device that signed out leaves nothing that could unseal a copy of
    its database). Missing pieces are fine; an unreadable keyring leaves its entry."""
    profile = profile_dir.expanduser().resolve()
    source_path = profile / SOURCE_FILE
    try:
        source = source_path.read_text("ascii").strip()
    except OSError:
        source = ""
    # The source file first: without it the profile no longer claims a key anywhere.
    for name in (SOURCE_FILE, CHECK_FILE, SALT_FILE, KEY_FILE):
        (profile / name).unlink(missing_ok=True)
    if source == SOURCE_KEYRING and keyring_usable():
        keyring = _keyring()
        with contextlib.suppress(keyring.errors.KeyringError):
            keyring.delete_password(KEYRING_SERVICE, str(profile))
