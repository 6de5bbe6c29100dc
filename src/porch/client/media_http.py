"""Small pieces the upload and the download share: URLs, error answers, sizes for people."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from porch.client.errors import ClientCode, ServerError, ServerUnreachable

log = logging.getLogger("porch.client.media")

Sleep = Callable[[float], object]  # asyncio.sleep, or a stand-in in tests
MAX_ATTEMPTS = 6  # per transfer, not per part: a link that keeps failing ends it
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)

# Signed URLs are fetched without the device's credentials (media_api.py); reads and writes
# of one chunk may take long on a slow link, connecting may not.
SIGNED_URL_TIMEOUT = httpx.Timeout(60.0, connect=15.0)


class RedactSignedUrls(logging.Filter):
    """httpx logs every request's URL at INFO; a signed URL's query string is a capability
    (whoever has it may fetch the blob), so it never reaches a log (docs/security.md, "Logs")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.copy_with(query=b"redacted") if isinstance(a, httpx.URL) and a.query else a
                for a in record.args
            )
        return True


# Attached once, at import: the SDK's own requests are what it can vouch for.
logging.getLogger("httpx").addFilter(RedactSignedUrls())


def signed_url_client(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """A client for part and blob URLs: no auth, no redirects (a URL is the capability)."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=SIGNED_URL_TIMEOUT,
        headers={"user-agent": "porch-python"},
        follow_redirects=False,
    )


class Attempts:
    """A transfer's failed attempts: pause before the next one, or give up after
    MAX_ATTEMPTS with one sentence (``give_up`` says what is left and what to do)."""

    def __init__(self, what: str, give_up: str, sleep: Sleep = asyncio.sleep) -> None:
        self._what, self._give_up, self._sleep = what, give_up, sleep
        self.count = 0

    async def failed(self, why: str) -> None:
        self.count += 1
        if self.count >= MAX_ATTEMPTS:
            raise ServerUnreachable(
                f"the {self._what} failed {self.count} times ({why}); {self._give_up}"
            )
        log.info("%s attempt %d failed (%s): trying again", self._what, self.count, why)
        result = self._sleep(BACKOFF_SECONDS[min(self.count, len(BACKOFF_SECONDS)) - 1])
        if asyncio.iscoroutine(result):
            await result


def resolve_url(base: httpx.URL, url: str) -> httpx.URL:
    """A Porch URL may be a path on the server (filesystem backend); S3's are absolute."""
    return base.join(url)


def failure_of(response: httpx.Response, what: str) -> ServerError:
    """A refused part or blob request as a ServerError: Porch's JSON error if it is one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
        return ServerError(
            err["code"][:64], str(err.get("message", ""))[:500], response.status_code, **details
        )
    return ServerError(
        ClientCode.HTTP_ERROR,
        f"the media storage answered HTTP {response.status_code} to the {what}; "
        "try again later, or ask the server's operator to check the media backend",
        response.status_code,
    )


def human_size(n: object) -> str:
    """1536 -> "1.5 kB", 120_000_000 -> "120 MB": decimal units, as the server words sizes
    in its refusals (so one sentence never mixes two kinds of megabyte)."""
    if not isinstance(n, int) or isinstance(n, bool):
        return str(n)
    if n < 1000:
        return f"{n} bytes"
    unit, scale = next(
        ((u, s) for u, s in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)) if n < s * 1000),
        ("TB", 1e12),
    )
    return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
