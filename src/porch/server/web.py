"""The browser app at the server's root: web/dist (built by Vite, never committed) served with a
strict Content-Security-Policy, long caching of hashed assets and a fallback to index.html for
the app's own paths, without ever shadowing the API, /metrics or the WebSocket (issue 9).

docs/operations.md, "Browser app", describes the settings, headers and a reverse proxy in front.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import Match
from starlette.types import Scope

import porch
from porch.server.settings import Settings

log = logging.getLogger("porch.server")

# First path segments that belong to the server, never to the app: an unknown /v1/... path is
# the API's JSON 404, not index.html, so a client bug is not hidden behind a 200 page.
RESERVED = frozenset({"v1", "metrics", "healthz", "readyz", "docs", "redoc", "openapi.json"})
# Vite writes content-hashed names here (web/vite.config.ts): a name never changes content.
ASSETS = "assets"
IMMUTABLE = "public, max-age=31536000, immutable"
# Everything else (index.html, the manifest, sw.js, icons) keeps its name across builds, so
# the browser revalidates it each time (a cheap 304 through the ETag).
REVALIDATE = "no-cache"
MAX_PATH = 1024
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# A Host header is echoed into connect-src only when it is a plain host[:port].
_HOST = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?"
)


def default_web_dir() -> Path | None:
    """web/dist of the checkout this package runs from, if it runs from one."""
    repo = Path(porch.__file__).resolve().parents[2]
    return repo / "web" / "dist" if (repo / "web" / "package.json").is_file() else None


def endpoint_origin(endpoint: str) -> str | None:
    """The origin (RFC 6454) a presigned URL on ``endpoint`` has, as a CSP source, or None.

    Only the scheme, host and port: never a path, a query or user:password@ (credentials in
    the URL must not reach a header). The default port is left out and the host lowercased,
    as browsers compare origins; anything that is not a plain http(s) host[:port] gives None,
    so a malformed setting can never widen or break the policy."""
    parts = urlsplit(endpoint.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return None
    host = parts.hostname
    if not host:
        return None
    if ":" in host:  # an IPv6 literal; urlsplit drops its brackets
        host = f"[{host}]"
    if not _HOST.fullmatch(host):
        return None
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def content_security_policy(settings: Settings) -> str:
    """The policy without the WebSocket origin, which depends on the request's host.

    Nothing but this origin: scripts are files (no inline script, no eval; libolm's
    WebAssembly needs 'wasm-unsafe-eval' and nothing more), styles are files, images and
    media may be blob: (attachments decrypted in the browser) or data: (QR codes), and
    connections go to this server and, with the S3 media backend, the object store the
    presigned URLs point at."""
    connect = ["'self'"]
    if settings.media_backend == "s3" and settings.s3_endpoint:
        origin = endpoint_origin(settings.s3_endpoint)
        if origin is not None:
            connect.append(origin)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src " + " ".join(connect),
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class WebApp:
    """The files of one built app and the headers every one of them is sent with."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root.resolve()
        self._csp = content_security_policy(settings)

    def headers(self, request: Request, cache: str) -> dict[str, str]:
        # connect-src 'self' covers ws(s) of the same origin in CSP Level 3 browsers only;
        # naming it keeps the WebSocket working in the others.
        csp = self._csp
        host = request.headers.get("host", "")
        if _HOST.fullmatch(host):
            ws = "wss" if request.url.scheme in ("https", "wss") else "ws"
            csp = csp.replace("connect-src 'self'", f"connect-src 'self' {ws}://{host}", 1)
        return {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            # The camera only for this origin: the Devices screen scans a new device's QR code.
            "Permissions-Policy": (
                "camera=(self), microphone=(), geolocation=(), payment=(), usb=(), "
                "browsing-topics=()"
            ),
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cache-Control": cache,
        }

    def find(self, path: str) -> Path | None:
        """The file a URL path names, or None. Only plain names below the root: no empty,
        dot or dot-dot segments, no hidden files, no backslashes or NULs, nothing whose
        resolved location leaves the root (a symbolic link out, say)."""
        if len(path) > MAX_PATH or "\\" in path or "\x00" in path:
            return None
        segments = path.split("/")
        if any(not s or s.startswith(".") for s in segments):
            return None
        candidate = (self.root / path).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def respond(self, request: Request, path: str) -> Response:
        if path.split("/", 1)[0] in RESERVED:
            raise HTTPException(404)
        found = self.find(path) if path else None
        if found is None:
            # A missing asset or named file is a 404: answering a stale hashed script with
            # HTML would hide the problem. Any other path is a screen of the app.
            if path.startswith(f"{ASSETS}/") or "." in path.rsplit("/", 1)[-1]:
                raise HTTPException(404)
            found = self.root / "index.html"
        cache = IMMUTABLE if found.parent == self.root / ASSETS else REVALIDATE
        return self._file(request, found, cache)

    def _file(self, request: Request, file: Path, cache: str) -> Response:
        media_type = TYPES.get(file.suffix) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        stat = file.stat()
        headers = self.headers(request, cache)
        # Size and modification time: a rebuild changes one or the other.
        headers["ETag"] = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if headers["ETag"] in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return FileResponse(file, media_type=media_type, headers=headers, stat_result=stat)


class _AppRoute(APIRoute):
    """The app's catch-all, which never matches the server's own paths: the router's own 404
    and 405 answers stand for them (a GET on a PUT-only media part URL is a JSON 405, not a
    404 from here)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        first = str(scope.get("path", "/")).lstrip("/").split("/", 1)[0]
        if first in RESERVED:
            return Match.NONE, {}
        return super().matches(scope)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")[:32] if tag.strip()}


def resolve(settings: Settings) -> WebApp | None:
    """The app to serve, or None with one log line saying how to get one."""
    root = settings.web_dir or default_web_dir()
    if root is None:
        log.info(
            "The browser app is not served: set PORCH_WEB_DIR to a built web/dist "
            "(npm ci && npm run build in web/ of a Porch checkout)."
        )
        return None
    if not (root / "index.html").is_file():
        log.warning(
            "The browser app is not served: %s has no index.html; build it with `make web-dist` "
            "(needs Node.js 20) or point PORCH_WEB_DIR at a built web/dist.",
            root,
        )
        return None
    return WebApp(root, settings)


def mount(app: FastAPI, settings: Settings) -> WebApp | None:
    """Serve the app at / for GET and HEAD. Call it after every other route: routes match in
    order, and this one takes any path the others did not."""
    web = resolve(settings)
    if web is None:
        return None

    # A plain function: FastAPI runs it in its thread pool, since it stats files.
    def serve(request: Request) -> Response:
        return web.respond(request, request.path_params["path"])

    app.router.routes.append(
        _AppRoute("/{path:path}", serve, methods=["GET", "HEAD"], include_in_schema=False)
    )
    log.info("Serving the browser app from %s", web.root)
    return web
