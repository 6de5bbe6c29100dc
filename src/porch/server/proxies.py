"""The client's address: the socket peer, or what a trusted proxy says it is.

Rate limits, failed-authentication counts and pre-authentication caps are all kept per client
address, so this is the one place that decides it (`porch serve` turns uvicorn's own proxy
header handling off). `X-Forwarded-For` is believed only from a peer in PORCH_TRUSTED_PROXIES,
and then only as far as the chain stays trusted: the right-most address that is not itself a
trusted proxy is the client, as nginx's realip module (`real_ip_recursive on`) and Starlette's
ProxyHeadersMiddleware do. Anything to its left was written by the client and can be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# More hops than any real proxy chain; a longer header is not walked further.
MAX_HOPS = 32


def _parse_ip(value: str) -> IPAddress | None:
    """An address from a forwarded-for entry: bare, `v4:port` or `[v6]:port`."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """Sans-IO: a socket peer and its X-Forwarded-For values in, the client's address out."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: IPAddress | None) -> bool:
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self._networks if net.version == address.version)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        if not self.trusts(_parse_ip(peer)):
            return peer
        # Several X-Forwarded-For headers are one list, in order (RFC 9110, section 5.3).
        hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops[-MAX_HOPS:]):
            address = _parse_ip(hop)
            if address is None:
                # Not an address: whoever wrote it is not a proxy we know. Keep the last hop
                # that a trusted proxy vouched for rather than a string the client chose.
                return client
            client = str(address)
            if not self.trusts(address):
                return client
        return client  # every hop was a trusted proxy: the left-most is the origin


def resolve(scope: Scope, proxies: TrustedProxies) -> Scope:
    """The scope with the client (and the scheme, from X-Forwarded-Proto) a trusted peer
    vouches for; the same scope when there is nothing to change. A plain function, so that
    the gateway's WebSocket, which skips the HTTP middleware (gateway/endpoint.py), gets
    the same answer without a coroutine frame kept for the connection's life."""
    if scope["type"] not in ("http", "websocket") or not proxies:
        return scope
    peer = scope.get("client")
    host = peer[0] if peer else ""
    if not proxies.trusts(_parse_ip(host)):
        return scope
    forwarded: list[str] = []
    proto = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip().lower()
    scope = dict(scope)
    client = proxies.client_address(host, forwarded)
    if client != host:
        scope["client"] = (client, 0)
    if proto in ("http", "https", "ws", "wss"):
        secure = proto in ("https", "wss")
        if scope["type"] == "websocket":
            scope["scheme"] = "wss" if secure else "ws"
        else:
            scope["scheme"] = "https" if secure else "http"
    return scope


class ProxyHeadersMiddleware:
    """Sets scope["client"] (and the scheme, from X-Forwarded-Proto) for a trusted peer."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(resolve(scope, self.proxies), receive, send)
