"""One JSON shape for every HTTP error: {"error": {"code": ..., "message": ..., ...}}."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.metrics import Metrics

log = logging.getLogger("porch.api")

STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID_PHONE: 400,
    ErrorCode.INVALID_USERNAME: 400,
    ErrorCode.CODE_INVALID: 403,
    ErrorCode.CODE_EXPIRED: 403,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.USERNAME_TAKEN: 409,
    ErrorCode.KEYS_EXIST: 409,
    ErrorCode.MASTER_KEY_MISMATCH: 409,
    ErrorCode.BAD_SIGNATURE: 400,
    ErrorCode.NO_KEYS: 409,
    ErrorCode.IDENTITY_KEY_IN_USE: 409,
    ErrorCode.REVISION_CONFLICT: 409,
    ErrorCode.GROUP_FULL: 409,
    ErrorCode.TOO_MANY_GROUPS: 409,
    ErrorCode.GROUP_EXISTS: 409,
    ErrorCode.LAST_ADMIN: 409,
    ErrorCode.TOO_MANY_DEVICES: 409,
    ErrorCode.CHANNEL_FILLED: 409,
    ErrorCode.STALE_DEVICE_LIST: 409,
    ErrorCode.MEDIA_TOO_LARGE: 413,
    ErrorCode.MEDIA_QUOTA: 429,
    ErrorCode.MEDIA_PENDING: 429,
    ErrorCode.MEDIA_NOT_FOUND: 404,
    ErrorCode.MEDIA_URL_INVALID: 403,
    ErrorCode.MEDIA_UPLOAD_DONE: 409,
    ErrorCode.MEDIA_INCOMPLETE: 409,
    ErrorCode.MEDIA_BUSY: 429,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.UNAVAILABLE: 503,
}


def error_response(exc: ProtocolError) -> JSONResponse:
    headers = {}
    if "retry_after" in exc.details:  # rate_limited, too_many_attempts
        headers["Retry-After"] = str(exc.details["retry_after"])
    if exc.code in (ErrorCode.AUTH_REQUIRED, ErrorCode.AUTH_FAILED):
        headers["WWW-Authenticate"] = 'Basic realm="porch"'
    if exc.code is ErrorCode.REQUEST_TIMEOUT:  # the rest of the body is not waited for
        headers["Connection"] = "close"
    if exc.code is ErrorCode.RANGE_NOT_SATISFIABLE:  # RFC 9110 §15.5.17
        headers["Content-Range"] = f"bytes */{exc.details['size']}"
    return JSONResponse(
        {"error": exc.to_dict()}, status_code=STATUS.get(exc.code, 500), headers=headers
    )


def install(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ProtocolError)
    async def _protocol(_: Request, exc: ProtocolError) -> JSONResponse:
        metrics.errors.labels(str(exc.code)).inc()
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        metrics.errors.labels(ErrorCode.BAD_REQUEST).inc()
        return error_response(ProtocolError(ErrorCode.BAD_REQUEST, "; ".join(parts) or "invalid"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            exc.status_code, ErrorCode.BAD_REQUEST
        )
        metrics.errors.labels(code).inc()
        message = str(exc.detail)
        if code != ErrorCode.BAD_REQUEST and message == HTTPStatus(exc.status_code).phrase:
            # The router's own answer (no route): most often a server URL with a path after
            # host:port, so the message says what to check.
            message = (
                f"this server has no {request.method} {request.url.path[:64]}; "
                "a Porch server's address is its scheme, host and port, with no path"
            )
        body = ProtocolError(code, message).to_dict()
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s in a request", type(exc).__name__, exc_info=exc)
        metrics.errors.labels(ErrorCode.INTERNAL).inc()
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error; it has been logged"}},
            status_code=500,
        )
