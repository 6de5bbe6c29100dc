"""A client profile: one directory per device identity (several users can share a machine).

profile.json holds what is not secret (server address, ids); everything secret is in the
local store, sealed with the profile key (docs/security.md, "Client profile").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from porch.client.errors import NotRegistered

PROFILE_FILE = "profile.json"


def default_profile_dir() -> Path:
    env = os.environ.get("PORCH_PROFILE")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("porch", appauthor=False)) / "default"


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
        return cls(**data)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (PROFILE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(directory / PROFILE_FILE)

    @property
    def ws_url(self) -> str:
        base = self.server.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :] + "/v1/ws"
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :] + "/v1/ws"
        return base + "/v1/ws"
