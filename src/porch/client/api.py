"""The server's HTTP API as typed calls (docs/protocol.md, "HTTP API")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from porch.client.core.keys import Bundle as Bundle
from porch.client.core.keys import DirectoryDevice as DirectoryDevice
from porch.client.errors import ClientCode, ServerError, ServerUnreachable
from porch.client.profile import check_server_url
from porch.crypto.olm import OneTimeKey


@dataclass(frozen=True, slots=True)
class Credentials:
    account_id: str
    device_id: int
    password: str

    def basic(self) -> tuple[str, str]:
        return (f"{self.account_id}.{self.device_id}", self.password)


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    account_id: str
    device_id: int
    registration_id: int
    password: str
    replaced: bool


@dataclass(frozen=True, slots=True)
class CodeSession:
    """A registration session: verify its code with session_id (docs/protocol.md)."""

    session_id: str
    expires_in: int
    next_code_in: int
    attempts_left: int


def _otk_json(k: OneTimeKey) -> dict[str, str]:
    return {"key_id": k.key_id, "curve25519": k.curve25519, "signature": k.signature}


def _why(exc: httpx.TransportError) -> str:
    """What went wrong, for people: "ConnectError: [Errno 111] Connection refused", say."""
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text:  # TLS spoken to a plain-HTTP server
        return "TLS handshake failed: is it an http:// server?"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HttpApi:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=check_server_url(base_url),
            transport=transport,
            timeout=timeout,
            auth=credentials.basic() if credentials else None,
            headers={"user-agent": "porch-python"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def base_url(self) -> httpx.URL:
        return self._http.base_url

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """One call with the errors mapped (ServerError, ServerUnreachable); the decoded JSON
        body, or None for 204. For the route groups kept in their own modules (group_api)."""
        return await self._call(method, path, json)

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = await self._http.request(method, path, json=json)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self._http.base_url} ({_why(exc)}); "
                "check the address and that `porch serve` is running"
            ) from None
        except httpx.HTTPError as exc:  # e.g. too many redirects: not a Porch server there
            raise ServerUnreachable(
                f"the server at {self._http.base_url} did not answer as a Porch server does "
                f"({type(exc).__name__}); check the address"
            ) from None
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                details = {k: v for k, v in err.items() if k not in ("code", "message")}
                raise ServerError(
                    str(err.get("code")), str(err.get("message")), response.status_code, **details
                )
            raise ServerError(
                ClientCode.HTTP_ERROR,
                f"the server answered HTTP {response.status_code} without a Porch error; "
                "check that the address is a Porch server",
                response.status_code,
            )
        return body

    # Registration
    async def request_code(self, phone: str, session_id: str | None = None) -> CodeSession:
        """Have a code sent; pass the current session_id to ask again within that session."""
        request: dict[str, str] = {"phone": phone}
        if session_id is not None:
            request["session_id"] = session_id
        body = await self._call("POST", "/v1/registration/code", request)
        return CodeSession(
            str(body["session_id"]),
            int(body["expires_in"]),
            int(body["next_code_in"]),
            int(body["attempts_left"]),
        )

    async def verify(self, session_id: str, code: str, name: str) -> RegisteredDevice:
        body = await self._call(
            "POST",
            "/v1/registration/verify",
            {"session_id": session_id, "code": code, "name": name},
        )
        return RegisteredDevice(
            body["account_id"],
            body["device_id"],
            body["registration_id"],
            body["password"],
            body["replaced"],
        )

    # Keys
    async def upload_keys(
        self,
        identity: dict[str, str] | None = None,
        one_time_keys: list[OneTimeKey] | None = None,
        fallback_key: OneTimeKey | None = None,
    ) -> int:
        body: dict[str, Any] = {"one_time_keys": [_otk_json(k) for k in one_time_keys or []]}
        if identity is not None:
            body["identity"] = identity
        if fallback_key is not None:
            body["fallback_key"] = _otk_json(fallback_key)
        return int((await self._call("PUT", "/v1/keys", body))["one_time_keys"])

    async def key_count(self) -> int:
        return int((await self._call("GET", "/v1/keys/count"))["one_time_keys"])

    async def get_keys(self, account_id: str) -> Bundle:
        return _bundle(await self._call("GET", f"/v1/keys/{account_id}"))

    async def claim_keys(self, account_id: str, devices: list[int] | None = None) -> Bundle:
        return _bundle(
            await self._call("POST", f"/v1/keys/{account_id}/claim", {"devices": devices})
        )

    # Account and directory
    async def me(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/v1/accounts/me")
        return result

    async def set_username(self, username: str | None) -> str | None:
        body = await self._call("PUT", "/v1/accounts/me/username", {"username": username})
        return body["username"]  # type: ignore[no-any-return]

    async def set_discoverable(self, discoverable: bool) -> None:
        await self._call("PUT", "/v1/accounts/me/discoverable", {"discoverable": discoverable})

    async def lookup(self, *, phone: str | None = None, username: str | None = None) -> str:
        body = await self._call(
            "POST", "/v1/directory/lookup", {"phone": phone, "username": username}
        )
        return str(body["account_id"])

    async def profile(self, account_id: str) -> tuple[str | None, str | None]:
        """(username, phone) the server shows for an account; phone only if discoverable."""
        body = await self._call("GET", f"/v1/accounts/{account_id}/profile")
        return body.get("username"), body.get("phone")

    async def devices(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/v1/devices")
        return result

    async def delete_device(self, device_id: int) -> None:
        await self._call("DELETE", f"/v1/devices/{device_id}")

    async def leave(self, list_b64: str, signature_b64: str) -> None:
        """This device removes itself, with the account's next signed list without it."""
        await self._call(
            "POST", "/v1/devices/leave", {"list": list_b64, "signature": signature_b64}
        )

    # Linking devices (docs/protocol.md section 3, "Linked devices")
    async def open_channel(self) -> str:
        return str((await self._call("POST", "/v1/provisioning"))["id"])

    async def wait_channel(self, channel_id: str, wait: int) -> str | None:
        """The channel's message (base64), or None if none came within wait seconds."""
        body = await self._call("GET", f"/v1/provisioning/{channel_id}?wait={int(wait)}")
        return None if body is None else str(body["body"])

    async def fill_channel(self, channel_id: str, body_b64: str) -> None:
        await self._call("PUT", f"/v1/provisioning/{channel_id}", {"body": body_b64})

    async def provisioning_code(self) -> str:
        return str((await self._call("POST", "/v1/devices/provisioning_code"))["code"])

    async def link(self, code: str, name: str) -> RegisteredDevice:
        body = await self._call("POST", "/v1/devices/link", {"code": code, "name": name})
        return RegisteredDevice(
            body["account_id"], body["device_id"], body["registration_id"], body["password"], False
        )

    async def put_device_list(self, list_b64: str, signature_b64: str) -> None:
        await self._call("PUT", "/v1/devices/list", {"list": list_b64, "signature": signature_b64})

    async def blocks(self) -> list[str]:
        return list((await self._call("GET", "/v1/blocks"))["blocked"])

    async def set_block(self, account_id: str, blocked: bool) -> None:
        await self._call("PUT" if blocked else "DELETE", f"/v1/blocks/{account_id}")


def _bundle(body: dict[str, Any]) -> Bundle:
    devices = []
    for d in body["devices"]:
        k = d.get("one_time_key")
        otk = (
            None
            if k is None
            else OneTimeKey(k["key_id"], k["curve25519"], k["signature"], k["fallback"])
        )
        devices.append(
            DirectoryDevice(
                d["device_id"],
                d["registration_id"],
                d["curve25519"],
                d["ed25519"],
                d["signature"],
                otk,
            )
        )
    listed = body.get("device_list")
    device_list = None
    if isinstance(listed, dict):
        device_list = (str(listed["list"]), str(listed["signature"]))
    return Bundle(body["account_id"], body["master_key"], devices, device_list)
