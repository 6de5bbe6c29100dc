"""`porch serve`: run the server with uvicorn on uvloop."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from porch.cli.exits import CommandError, Exit, bounded

if TYPE_CHECKING:  # loaded by `run` only (lazy start-up, porch.cli.main)
    from porch.server.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server (every option also reads PORCH_*)")
    p.add_argument("--host", help="address to listen on (PORCH_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=bounded(int, 1, 65535), help="port (PORCH_PORT, default 8000)")
    p.add_argument(
        "--data-dir", type=Path, help="data directory (PORCH_DATA_DIR, default ./porch-data)"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--workers",
        type=bounded(int, 1, 64),
        help="worker processes (PORCH_WORKERS); more than one needs PORCH_REDIS_URL",
    )
    p.add_argument(
        "--ws-stack",
        choices=["websockets", "picows"],
        help="the WebSocket layer (PORCH_WS_STACK, default picows); same port either way",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn  # loaded for this command only (porch.cli.main, lazy start-up)
    from pydantic import ValidationError
    from uvicorn.supervisors import Multiprocess

    from porch.server import edge, logs
    from porch.server.app import create_app
    from porch.server.gc_tuning import tune_collector
    from porch.server.settings import Settings

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "workers": args.workers,
            "ws_stack": args.ws_stack,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"PORCH_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise CommandError(f"bad setting ({problems}); see docs/operations.md") from None
    logs.configure(settings)
    stack = ws_stack(settings)
    if not settings.database_url:
        # SQLite opens its file only in the app's lifespan, where a failure is a uvicorn
        # traceback: a data directory that cannot be made is said here, in a sentence.
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(
                f"cannot use {settings.data_dir} as the data directory ({exc.strerror}); "
                "pass a writable --data-dir (PORCH_DATA_DIR)"
            ) from None
    if settings.workers > 1 and not settings.redis_url:
        print(
            "porch: --workers above 1 needs PORCH_REDIS_URL (workers wake each other through "
            "Redis) and preferably PORCH_DATABASE_URL=postgresql://...",
            file=sys.stderr,
        )
        return 2
    _check_port_free(settings.host, settings.port)
    limits = edge.EdgeLimits.from_settings(settings)
    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools and websockets' sans-I/O protocol, with caps on what a connection holds
        # before it authenticates (server/edge.py).
        http=edge.HTTP_PROTOCOL,
        ws=edge.ws_protocol(stack),
        ws_max_size=settings.socket_max_bytes,
        # The app decides the client address from PORCH_TRUSTED_PROXIES (server/proxies.py):
        # uvicorn's own X-Forwarded-For handling, which trusts FORWARDED_ALLOW_IPS, is off.
        proxy_headers=False,
        # Ciphertext does not compress, and compression beside secrets invites CRIME-style leaks.
        ws_per_message_deflate=False,
        ws_ping_interval=settings.heartbeat_seconds,
        ws_ping_timeout=settings.heartbeat_seconds,
        access_log=settings.access_log,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    logging.getLogger("porch.server").info(
        "Porch listening on http://%s:%d (%s)",
        settings.host,
        settings.port,
        "PostgreSQL" if settings.database_url else f"data in {settings.data_dir.resolve()}",
    )
    if settings.workers > 1:
        # Each worker builds its app from PORCH_* variables: hand them the command line's too.
        for name, value in overrides.items():
            os.environ[f"PORCH_{name.upper()}"] = str(value)
        config = edge.Config(
            "porch.server.app:app_from_env",
            edge=limits,
            factory=True,
            workers=settings.workers,
            **options,
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        app = create_app(settings)
        tune_collector(settings.gc_threshold)
        uvicorn.Server(edge.Config(app, edge=limits, **options)).run()
    return 0


def ws_stack(settings: Settings) -> str:
    """The WebSocket layer to serve with. picows is a dependency with wheels for the common
    platforms; where it was not installed or does not import (no wheel, no compiler), the
    default falls back to websockets with a warning, and a picows asked for by name is an
    error that says what to do."""
    if settings.ws_stack != "picows":
        return settings.ws_stack
    try:
        importlib.import_module("porch.server.gateway.picows_stack")
    except ImportError as exc:
        if "ws_stack" in settings.model_fields_set:  # PORCH_WS_STACK or --ws-stack
            raise CommandError(
                f"PORCH_WS_STACK=picows, but picows does not import here ({exc}); install it "
                "(pip install 'picows>=2.3,<3') or choose PORCH_WS_STACK=websockets"
            ) from None
        logging.getLogger("porch.server").warning(
            "picows, the default WebSocket layer, does not import here (%s): serving the "
            "WebSocket with websockets instead, on the same port; install picows "
            "(pip install 'picows>=2.3,<3') or set PORCH_WS_STACK=websockets to silence this",
            exc,
        )
        return "websockets"
    return "picows"


def _check_port_free(host: str, port: int) -> None:
    """A port in use is said in a sentence here; uvicorn would log an error and exit 3.
    Bound the way uvicorn binds (SO_REUSEADDR), so that a port in TIME_WAIT is not refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another server (perhaps "
                "another `porch serve`) holds it; stop that one or pass another --port",
                Exit.NETWORK,
            ) from None
