"""Verification-code delivery.

Two shapes of provider exist: ones that deliver a code we generate (console, a plain SMS
gateway) and ones that generate and check the code themselves (Twilio Verify). The service
asks `owns_code` to know which: it keeps attempts, expiry and rate limits either way.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Protocol

import httpx

from porch.protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger("porch.sms")


class SmsProvider(Protocol):
    name: str
    owns_code: bool

    async def start(self, phone: str, code: str) -> None:
        """Send a verification code to phone (code is ignored where owns_code is True)."""
        ...

    async def check(self, phone: str, code: str) -> bool:
        """Only for providers that own the code: ask them whether it is right."""
        ...

    async def aclose(self) -> None: ...


class ConsoleSms:
    """Development provider: shows the code in the log and in <data-dir>/sms-outbox.jsonl.

    Showing codes is this provider's whole job; no other component ever logs one.
    """

    name = "console"
    owns_code = False

    def __init__(self, outbox: Path) -> None:
        self._outbox = outbox

    async def start(self, phone: str, code: str) -> None:
        self._outbox.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"phone": phone, "code": code, "ts": int(time.time() * 1000)})
        with self._outbox.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.warning("DEVELOPMENT SMS to %s: your Porch code is %s", phone, code)

    async def check(self, phone: str, code: str) -> bool:
        raise AssertionError("console provider does not own codes")

    async def aclose(self) -> None:
        return None


class TwilioVerify:
    """Twilio Verify v2: POST Services/{sid}/Verifications and .../VerificationCheck."""

    name = "twilio"
    owns_code = True
    BASE_URL = "https://verify.twilio.com/v2"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        service_sid: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._service_sid = service_sid
        self._http = httpx.AsyncClient(
            base_url=self.BASE_URL,
            auth=(account_sid, auth_token),
            timeout=10.0,
            transport=transport,
        )

    async def start(self, phone: str, code: str) -> None:
        response = await self._post("Verifications", {"To": phone, "Channel": "sms"})
        if response.status_code not in (200, 201):
            raise self._failure(response)

    async def check(self, phone: str, code: str) -> bool:
        response = await self._post("VerificationCheck", {"To": phone, "Code": code})
        if response.status_code == 404:
            # Twilio answers 404 once a verification is approved, expired or out of attempts.
            return False
        if response.status_code != 200:
            raise self._failure(response)
        try:
            status = response.json().get("status")
        except (ValueError, AttributeError):
            raise self._failure(response) from None
        return bool(status == "approved")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, what: str, form: dict[str, str]) -> httpx.Response:
        try:
            return await self._http.post(f"/Services/{self._service_sid}/{what}", data=form)
        except httpx.HTTPError as exc:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, f"the SMS provider is unreachable ({type(exc).__name__})"
            ) from None

    @staticmethod
    def _failure(response: httpx.Response) -> ProtocolError:
        log.error("twilio verify answered HTTP %s", response.status_code)
        return ProtocolError(
            ErrorCode.UNAVAILABLE,
            f"the SMS provider refused the request (HTTP {response.status_code})",
        )
