"""The client address behind trusted proxies: the right-most untrusted X-Forwarded-For hop."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from porch.server.proxies import ProxyHeadersMiddleware, TrustedProxies, resolve
from porch.server.settings import Settings

PROXIES = TrustedProxies(["127.0.0.1", "::1", "10.1.0.0/16"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # An untrusted peer's header is ignored, whatever it says.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # A trusted peer without the header is the client itself.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", [""], "127.0.0.1"),
        # nginx appends the address it saw: the right-most hop.
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        # The client's own (forged) entries are to the left of what the proxy appended.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        # A chain of trusted proxies is walked through to the first untrusted hop.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1, 10.1.9.9"], "198.51.100.1"),
        ("::1", ["2001:db8::5"], "2001:db8::5"),
        # Ports and brackets are dropped; an address is an address.
        ("127.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::5]:443"], "2001:db8::5"),
        # Garbage is not a client address: keep the last hop a trusted proxy vouched for.
        ("127.0.0.1", ["not-an-ip"], "127.0.0.1"),
        ("10.1.2.3", ["junk, 10.1.9.9"], "10.1.9.9"),
        # Only trusted proxies all the way: the left-most is the origin.
        ("127.0.0.1", ["10.1.0.1, 10.1.0.2"], "10.1.0.1"),
        # An IPv4 proxy seen through a dual-stack socket is still trusted.
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
    ],
)
def test_client_address(peer: str, forwarded: list[str], client: str) -> None:
    assert PROXIES.client_address(peer, forwarded) == client


def test_nothing_trusted_means_the_socket_peer() -> None:
    assert TrustedProxies([]).client_address("127.0.0.1", ["198.51.100.1"]) == "127.0.0.1"


def test_settings_parse_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORCH_TRUSTED_PROXIES", " 172.30.0.10, 10.0.0.0/8 ,::1")
    assert Settings().trusted_proxies == ["172.30.0.10/32", "10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("PORCH_TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == []
    monkeypatch.delenv("PORCH_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == ["127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("PORCH_TRUSTED_PROXIES", "nginx")
    with pytest.raises(ValidationError):
        Settings()


async def test_middleware_rewrites_client_and_scheme_only_for_a_trusted_peer() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    middleware = ProxyHeadersMiddleware(app, TrustedProxies(["127.0.0.1"]))
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1"), (b"x-forwarded-proto", b"https")]
    for peer in ("127.0.0.1", "203.0.113.9"):
        for kind, scheme in (("http", "http"), ("websocket", "ws")):
            scope = {"type": kind, "client": (peer, 5555), "scheme": scheme, "headers": headers}
            await middleware(scope, None, None)
    trusted_http, trusted_ws, untrusted_http, untrusted_ws = seen
    assert trusted_http["client"][0] == trusted_ws["client"][0] == "198.51.100.1"
    assert (trusted_http["scheme"], trusted_ws["scheme"]) == ("https", "wss")
    assert untrusted_http["client"] == untrusted_ws["client"] == ("203.0.113.9", 5555)
    assert (untrusted_http["scheme"], untrusted_ws["scheme"]) == ("http", "ws")


def test_resolve_leaves_an_untrusted_peers_scope_alone_and_rewrites_a_trusted_ones() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"wss")]
    untrusted = {"type": "websocket", "client": ("203.0.113.9", 5), "headers": headers}
    assert resolve(untrusted, PROXIES) is untrusted
    trusted = {"type": "websocket", "client": ("127.0.0.1", 5), "headers": headers}
    got = resolve(trusted, PROXIES)
    assert got["client"] == ("198.51.100.1", 0) and got["scheme"] == "wss"
    assert trusted["client"] == ("127.0.0.1", 5)  # the server's own scope is not changed
