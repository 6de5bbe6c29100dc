"""A client profile: one directory per device identity (several users can share a machine).

profile.json holds what is not secret (server address, ids); everything secret is in the
local store, sealed with the profile key (docs/security.md, "Client profile").

This module is also where the SDK meets the file system for a profile: it opens the store
(`open_store`), maps OS and SQLite failures to ProfileError with a sentence saying what to do,
and keeps the directory 0700 and its files 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from porch.client.errors import ClientCode, NotRegistered, ProfileError, UsageError
from porch.client.ownership import LOCK_FILE
from porch.client.store import LocalStore
from porch.crypto.at_rest import Sealer, forget_profile_key, load_or_create_profile_key
from porch.crypto.errors import PROFILE_LOCKED, ProfileKeyError

PROFILE_FILE = "profile.json"
# Contacts, numbers and message history are nobody else's business on a shared machine, so the
# profile is private whatever the umask (as ~/.ssh and ~/.gnupg are; docs/security.md).
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_profile_dir() -> Path:
    env = os.environ.get("PORCH_PROFILE")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("porch", appauthor=False)) / "default"


def check_server_url(url: str) -> str:
    """The URL if it is http(s)://HOST[:PORT][/PATH], else UsageError saying what to type."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        example = url.strip() if "://" not in url else "127.0.0.1:8000"
        raise UsageError(
            f"{url!r} is not a server URL; write it with its scheme, like http://{example} "
            "(or https:// for a server behind TLS)"
        )
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise UsageError(f"{url!r} has an invalid port; use 1-65535") from None
    return url.strip().rstrip("/")


def profile_error(exc: BaseException, directory: Path) -> ProfileError:
    """One sentence for an OS or SQLite failure on the profile, saying what to do."""
    if isinstance(exc, ProfileError):
        return exc
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = detail.lower()
    if isinstance(exc, PermissionError) or "read-only" in text or "readonly" in text:
        return ProfileError(
            f"the profile {directory} is read-only ({detail}); make it writable, or use another "
            "with --profile DIR",
            code=ClientCode.PROFILE_READ_ONLY,
        )
    if "locked" in text or "busy" in text:
        return ProfileError(
            f"the profile {directory} is in use by another porch process ({detail}); "
            "wait for it to finish and try again",
            code=ClientCode.PROFILE_LOCKED,
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return ProfileError(
            f"the profile database in {directory} is damaged ({detail}); restore it from a "
            "backup or register again into a new --profile DIR",
            code=ClientCode.PROFILE_CORRUPT,
        )
    return ProfileError(
        f"cannot use the profile {directory} ({detail}); check that it exists and is writable, "
        "or use another with --profile DIR"
    )


def ensure_private_dir(directory: Path) -> None:
    """Create the profile directory (and parents) with mode 0700, whatever the umask."""
    try:
        if not directory.is_dir():
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise profile_error(exc, directory) from None


def restrict_profile(directory: Path) -> None:
    """Take group and other access away from a profile made by an older version (whose files
    followed the umask). The key file is left alone: at_rest refuses a key file others could
    read, since its key may have leaked, rather than quietly hiding that."""
    if os.name != "posix":
        return
    names = [PROFILE_FILE, "client.db", "client.db-wal", "client.db-shm"]
    for path in [directory, *(directory / n for n in names)]:
        try:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                os.chmod(path, mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise profile_error(exc, directory) from None


def create_private_file(path: Path) -> None:
    """Create path empty with mode 0600 if it does not exist (SQLite then gives its -wal and
    -shm files the same mode as the database file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise profile_error(exc, path.parent) from None
    os.close(fd)


def check_writable(directory: Path) -> None:
    """ProfileError unless a file can be created in directory: checked before the server is
    asked for anything that would be lost if the profile could not be saved afterwards."""
    ensure_private_dir(directory)
    probe = directory / f".porch-write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.close(fd)
        probe.unlink()
        for name in (PROFILE_FILE, "client.db"):
            existing = directory / name
            if existing.exists() and not os.access(existing, os.W_OK):
                raise PermissionError(13, "Permission denied", str(existing))
    except OSError as exc:
        raise profile_error(exc, directory) from None


class _Rollback(Exception):
    """Raised inside the write check's transaction to undo it."""


def open_store(profile_dir: Path) -> tuple[LocalStore, Sealer]:
    """Open the profile's store, or ProfileError saying what is wrong with the profile.

    A write is tried (and rolled back) at once: a read-only profile is reported here, before
    anything is sent, rather than by whichever write comes first later."""
    ensure_private_dir(profile_dir)
    restrict_profile(profile_dir)
    try:
        key, _source = load_or_create_profile_key(profile_dir)
    except ProfileKeyError as exc:
        code = ClientCode.PROFILE_LOCKED if exc.code == PROFILE_LOCKED else ClientCode.PROFILE
        raise ProfileError(exc.message, code=code) from None
    except OSError as exc:
        raise profile_error(exc, profile_dir) from None
    sealer = Sealer(key)
    path = profile_dir / "client.db"
    create_private_file(path)
    try:
        store = LocalStore(path, sealer)
    except (sqlite3.Error, OSError) as exc:
        raise profile_error(exc, profile_dir) from None
    try:
        with contextlib.suppress(_Rollback), store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO kv (name, value) VALUES ('write-check', x'')")
            raise _Rollback
    except (sqlite3.Error, OSError) as exc:
        store.close()
        raise profile_error(exc, profile_dir) from None
    return store, sealer


@dataclass
class ProfileConfig:
    server: str
    account_id: str
    device_id: int
    registration_id: int
    phone: str
    username: str | None = None

    @classmethod
    def load(cls, directory: Path) -> ProfileConfig:
        path = directory / PROFILE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotRegistered(
                f"no Porch profile in {directory}; run `porch register --server URL --phone NUMBER`"
                " first (or pass --profile DIR)"
            ) from None
        except OSError as exc:
            raise profile_error(exc, directory) from None
        except ValueError:  # includes UnicodeDecodeError
            data = None
        try:
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return cls(**data)
        except TypeError:
            raise ProfileError(
                f"{path} is damaged; register again (or restore it from a backup)",
                code=ClientCode.PROFILE_CORRUPT,
            ) from None

    def save(self, directory: Path) -> None:
        ensure_private_dir(directory)
        tmp = directory / (PROFILE_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(asdict(self), indent=2) + "\n")
            os.chmod(tmp, FILE_MODE)  # a .tmp left by an older version may be wider
            tmp.replace(directory / PROFILE_FILE)
        except OSError as exc:
            raise profile_error(exc, directory) from None

    @property
    def ws_url(self) -> str:
        base = self.server.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :] + "/v1/ws"
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :] + "/v1/ws"
        return base + "/v1/ws"


def erase_profile(directory: Path) -> None:
    """Delete what Porch keeps in a profile (its database with history and keys, its config
    and key material), after this device left its account (``porch devices leave``). Other
    files in the directory are left, and the directory goes only if it is then empty."""
    try:
        for name in ("client.db-wal", "client.db-shm", "client.db", PROFILE_FILE):
            (directory / name).unlink(missing_ok=True)
        forget_profile_key(directory)
        (directory / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: the user's own files stay
            directory.rmdir()
    except OSError as exc:
        raise profile_error(exc, directory) from None
