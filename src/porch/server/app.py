"""create_app(settings): the ASGI app, its collaborators and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

import porch
from porch.protocol.errors import ProtocolError
from porch.server import logs, web
from porch.server.api import accounts as accounts_api
from porch.server.api import devices as devices_api
from porch.server.api import errors as api_errors
from porch.server.api import groups as groups_api
from porch.server.api import keys as keys_api
from porch.server.api import media as media_api
from porch.server.api import push as push_api
from porch.server.api import registration as registration_api
from porch.server.api.deps import Services
from porch.server.api.limits import BodyLimitMiddleware
from porch.server.bus.base import Bus
from porch.server.bus.memory import MemoryBus
from porch.server.bus.redis import RedisBus
from porch.server.clock import Clock, SystemClock
from porch.server.gateway.admission import Admission, Ticket, refuse
from porch.server.gateway.connection import Connection, GatewayConfig
from porch.server.gateway.endpoint import PorchApp, Sessions
from porch.server.gateway.handover import HandOver
from porch.server.gateway.socket import GatewaySocket
from porch.server.gc_tuning import tune_collector
from porch.server.media.base import BlobStore
from porch.server.media.filesystem import FilesystemBlobs
from porch.server.media.signing import UrlSigner, derive_key
from porch.server.metrics import Metrics
from porch.server.providers.push import PushProvider
from porch.server.providers.push_webpush import VapidKey, WebPush
from porch.server.providers.sms import ConsoleSms, SmsProvider, TwilioVerify
from porch.server.proxies import ProxyHeadersMiddleware, TrustedProxies, resolve
from porch.server.ratelimit import Limit, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from porch.server.services.accounts import AccountService
from porch.server.services.devices import DeviceService
from porch.server.services.groups import GroupService
from porch.server.services.keys import KeyService
from porch.server.services.media import MediaService
from porch.server.services.media_guard import PutCounter
from porch.server.services.media_local import LocalMedia
from porch.server.services.messages import MessageService
from porch.server.services.push import PushService, vapid_loader
from porch.server.services.push_sender import PushConfig, PushSender
from porch.server.settings import Settings
from porch.server.store.base import Store, SweepResult
from porch.server.store.postgres import PostgresStore
from porch.server.store.sqlite import SqliteStore
from porch.server.store.sweeper import Sweeper

log = logging.getLogger("porch.server")


def make_store(settings: Settings) -> Store:
    url = settings.database_url
    if url is None:
        return SqliteStore(settings.sqlite_path, settings.sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, settings.database_pool_size)
    raise ValueError(
        f"PORCH_DATABASE_URL must start with postgresql:// (got {url.split(':', 1)[0]}://); "
        "leave it unset for SQLite in the data directory"
    )


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url:
        return RedisBus(settings.redis_url, settings.resync_seconds)
    return MemoryBus()


def make_limiter(settings: Settings, clock: Clock) -> RateLimiter:
    if settings.redis_url:
        return RedisRateLimiter(aioredis.from_url(settings.redis_url), clock)
    return MemoryRateLimiter(clock)


def make_sms(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "twilio":
        sid, token, service = (
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_verify_service_sid,
        )
        if not (sid and token and service):
            raise ValueError(
                "PORCH_SMS_PROVIDER=twilio needs PORCH_TWILIO_ACCOUNT_SID, "
                "PORCH_TWILIO_AUTH_TOKEN and PORCH_TWILIO_VERIFY_SERVICE_SID"
            )
        return TwilioVerify(sid, token, service)
    return ConsoleSms(settings.data_dir / "sms-outbox.jsonl")


def make_signer(settings: Settings, store: Store) -> UrlSigner:
    """The filesystem backend's URL key: from PORCH_SECRET, else from a random secret kept in
    the database, so every node of a cluster signs and checks with the same key."""

    async def load() -> bytes:
        if settings.secret:
            return derive_key(settings.secret.encode("utf-8"))
        return derive_key(await store.secret("media-url", secrets.token_bytes(32)))

    return UrlSigner(load)


def make_push(
    settings: Settings, vapid: Callable[[], Awaitable[VapidKey]]
) -> Callable[[], Awaitable[PushProvider]]:
    """The push provider, opened when the app starts (the VAPID key may live in the store)."""

    async def open_provider() -> PushProvider:
        verify: ssl.SSLContext | bool = True
        if settings.push_ca_file is not None:
            verify = ssl.create_default_context(cafile=settings.push_ca_file)
        return WebPush(await vapid(), settings.vapid_subject, verify=verify)

    return open_provider


def make_blobs(settings: Settings, signer: UrlSigner) -> BlobStore:
    if settings.media_backend == "s3":
        from porch.server.media.s3 import S3Blobs  # aioboto3 is imported only when used

        return S3Blobs.from_settings(settings)
    return FilesystemBlobs(settings.media_path, signer)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    bus: Bus | None = None,
    sms: SmsProvider | None = None,
    clock: Clock | None = None,
    limiter: RateLimiter | None = None,
    blobs: BlobStore | None = None,
) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()
    store = store or make_store(settings)
    bus = bus or make_bus(settings)
    sms = sms or make_sms(settings)
    limiter = limiter or make_limiter(settings, clock)
    metrics = Metrics()
    accounts = AccountService(store, bus, sms, limiter, clock, settings)
    keys = KeyService(
        store,
        bus,
        limiter,
        Limit.parse(settings.limit_key_claims_per_account),
        settings.one_time_keys_low,
    )
    vapid = vapid_loader(settings.vapid_private_key, lambda c: store.secret("vapid", c))
    push_sender = PushSender(
        store,
        bus,
        limiter,
        make_push(settings, vapid),
        metrics,
        PushConfig(
            coalesce_seconds=settings.push_coalesce_seconds,
            ttl_seconds=settings.push_ttl_seconds,
            queue_size=settings.push_queue_size,
            concurrency=settings.push_concurrency,
        ),
    )
    push = PushService(store, vapid, clock, settings.push_allow_private_endpoints)
    messages = MessageService(
        store,
        bus,
        clock,
        metrics,
        settings.retention_days,
        wake=push_sender.wake,
        online=push_sender.online,
    )
    groups = GroupService(
        store,
        bus,
        limiter,
        Limit.parse(settings.limit_group_joins_per_account),
        settings.max_group_members,
        settings.max_groups_per_account,
    )
    devices = DeviceService(store, bus, limiter, clock, settings)
    signer = make_signer(settings, store)
    blobs = blobs or make_blobs(settings, signer)
    media = MediaService(store, blobs, limiter, clock, settings)
    local_media = (
        LocalMedia(
            media,
            store,
            blobs,
            signer,
            clock,
            idle_seconds=settings.media_body_idle_seconds,
            puts=PutCounter(
                settings.media_part_puts_per_upload, settings.media_part_puts_per_account
            ),
        )
        if isinstance(blobs, FilesystemBlobs)
        else None
    )
    services = Services(store, accounts, keys, messages, groups, devices, media, local_media, push)
    gateway = GatewayConfig(
        max_frame_bytes=settings.max_frame_bytes,
        delivery_window=settings.delivery_window,
        send_queue_frames=settings.send_queue_frames,
        auth_timeout=settings.auth_timeout_seconds,
        send_limit=Limit.parse(settings.limit_sends_per_connection),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Entered in order and left in reverse: the sweeper stops before the store closes, the
        # bus before the store, and each component's tasks are done before it lets go of what
        # they use (lifecycle.py). A component whose task crashes cancels this lifespan.
        async def sweep(now: int) -> SweepResult:
            # Expired provisioning channels and codes go with everything else (spec C).
            result = await store.sweep(now)
            await store.sweep_provisioning(now)
            blob_count, blob_bytes = await media.sweep(now)
            metrics.media_swept.inc(blob_count)
            metrics.media_swept_bytes.inc(blob_bytes)
            return dataclasses.replace(result, media_blobs=blob_count, media_bytes=blob_bytes)

        sweeper = Sweeper(sweep, store.queue_depth, clock, metrics, settings.sweep_interval_seconds)
        try:
            async with store, bus, blobs:
                if sms.name == "console":
                    log.warning(
                        "DEVELOPMENT MODE: verification codes are not sent by SMS; they are "
                        "logged and written to %s. Set PORCH_SMS_PROVIDER=twilio for real SMS.",
                        settings.data_dir / "sms-outbox.jsonl",
                    )
                if settings.vapid_subject == "mailto:admin@localhost":
                    log.warning(
                        "PORCH_VAPID_SUBJECT is not set: push services see mailto:admin@localhost "
                        "as this server's contact, and some refuse it. Set it to your address."
                    )
                metrics.queue_depth.set(await store.queue_depth())
                async with sweeper, push_sender:
                    yield
        finally:
            await sms.aclose()

    app = PorchApp(
        title="Porch",
        version=porch.__version__,
        summary="End-to-end encrypted messaging server. It relays and stores ciphertext only.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.services = services
    app.state.metrics = metrics
    app.state.settings = settings
    api_errors.install(app, metrics)
    app.include_router(registration_api.router)
    app.include_router(accounts_api.router)
    app.include_router(keys_api.router)
    app.include_router(groups_api.router)
    app.include_router(devices_api.router)
    app.include_router(media_api.router)
    app.include_router(push_api.router)

    # Part PUTs stream to disk under their own per-part limit (api/media.py).
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_request_bytes, exempt=media_api.PART_PREFIX
    )
    # Outermost: everything inside (rate limits, admission) sees the resolved client address.
    proxies = TrustedProxies(settings.trusted_proxies)
    app.add_middleware(ProxyHeadersMiddleware, proxies=proxies)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Readiness: the store answers."""
        try:
            async with asyncio.timeout(2.0):
                await store.ping()
        except Exception as exc:
            log.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def prometheus() -> Response:
        metrics.queue_depth.set(await store.queue_depth())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    admission = Admission(
        settings.preauth_connections_per_address, settings.preauth_connections_total
    )

    handover = HandOver(metrics.delivery_latency)  # one tick's hand-overs, for every session

    async def session(ws: GatewaySocket, ticket: Ticket) -> None:
        await Connection(
            ws,
            accounts,
            keys,
            messages,
            bus,
            clock,
            metrics,
            gateway,
            preauth=ticket,
            handover=handover,
        ).run()

    async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(resolve(scope, proxies), receive, send)
        try:
            ticket = admission.admit(ws.client.host if ws.client else "")
        except ProtocolError as exc:
            metrics.errors.labels(str(exc.code)).inc()
            await refuse(ws, exc)
            return
        try:
            await session(ws, ticket)
        finally:
            ticket.release()

    # What the picows stack, which is not an ASGI server, starts sessions with
    # (gateway/picows_stack.py).
    app.sessions = Sessions(
        admission,
        proxies,
        metrics,
        settings.heartbeat_seconds,
        settings.preauth_max_frame_bytes,
        session,
    )
    # Past the middleware stack, which would stay on the stack for the connection's life
    # (gateway/endpoint.py).
    app.gateway = websocket
    # Last: the browser app takes the GET paths no route above took (server/web.py).
    web.mount(app, settings)

    return app


def app_from_env() -> FastAPI:
    """The app factory uvicorn workers call (porch serve --workers N): settings from PORCH_*.
    Workers are fresh processes, so they set up logging and file modes themselves."""
    settings = Settings()
    logs.configure(settings)
    app = create_app(settings)
    tune_collector(settings.gc_threshold)  # a worker serves from here on (gc_tuning.py)
    return app
