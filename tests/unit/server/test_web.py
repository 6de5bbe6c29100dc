"""server/web.py through the whole app: the built browser app at /, with its headers, caching
and fallback, and the API, /metrics and the WebSocket exactly as without it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from porch.server.app import create_app
from porch.server.settings import Settings
from porch.server.web import (
    IMMUTABLE,
    content_security_policy,
    default_web_dir,
    endpoint_origin,
)

INDEX = b"<!doctype html><title>Porch</title><main id=app></main>"
SCRIPT = b"console.log('porch')"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-B1a2c3D4.js").write_bytes(SCRIPT)
    (root / "assets" / "olm-9f8e7d6c.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "manifest.webmanifest").write_text('{"name": "Porch"}')
    (root / "sw.js").write_text("self.addEventListener('push', () => {});")
    (root / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / ".env").write_text("hidden")
    (tmp_path / "secret.txt").write_text("outside the app")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    return root


def _client(tmp_path: Path, **kw: object) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", **kw)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path, dist: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, web_dir=dist)


def test_index_at_the_root_with_a_strict_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.content == INDEX
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    csp = dict(d.split(" ", 1) for d in r.headers["content-security-policy"].split("; "))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert csp["connect-src"] == "'self' ws://testserver"
    assert csp["img-src"] == "'self' blob: data:"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "camera=(self)" in r.headers["permissions-policy"]


def test_hashed_assets_are_immutable_and_the_rest_revalidates(client: TestClient) -> None:
    script = client.get("/assets/index-B1a2c3D4.js")
    assert script.content == SCRIPT
    assert script.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    wasm = client.get("/assets/olm-9f8e7d6c.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"] == "application/manifest+json"
    for path in ("/manifest.webmanifest", "/sw.js", "/icon-192.png", "/index.html"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-cache", path
        assert "content-security-policy" in r.headers, path


def test_revalidation_answers_304_without_a_body(client: TestClient) -> None:
    first = client.get("/sw.js")
    again = client.get("/sw.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["cache-control"] == "no-cache"
    changed = client.get("/sw.js", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


def test_head_sends_headers_only(client: TestClient) -> None:
    r = client.head("/assets/index-B1a2c3D4.js")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(SCRIPT))


@pytest.mark.parametrize("path", ["/chats", "/chats/42", "/settings/devices/"])
def test_app_paths_fall_back_to_index(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.content == INDEX
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/assets/index-OLDHASH.js", "/favicon.ico", "/assets/"])
def test_missing_files_are_404_not_the_page(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/assets/..%5c..%5csecret.txt",
        "/link.txt",
        "/.env",
        "//etc/passwd",
        "/index.html%00.js",
    ],
)
def test_nothing_outside_the_app_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert b"outside the app" not in r.content
    assert b"hidden" not in r.content
    assert b"root:" not in r.content
    # Paths that name files are refused; the rest are the app's page, never a file.
    assert r.status_code == 404 or r.content == INDEX


def test_api_metrics_and_websocket_are_not_shadowed(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/metrics").text.startswith("# HELP")
    for path in ("/v1/no-such-route", "/v1", "/v1/ws", "/metrics/x", "/readyz/x"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found", path
    # A POST to the app is not a file upload anywhere: the catch-all only answers GET and HEAD.
    assert client.post("/chats").status_code == 405
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_text('{"t": "nonsense"}')
        assert "error" in ws.receive_text()


def test_a_host_header_cannot_write_the_policy(client: TestClient) -> None:
    r = client.get("/", headers={"Host": "evil.example; script-src *"})
    assert r.status_code == 200
    policy = r.headers["content-security-policy"]
    assert "evil" not in policy
    assert "connect-src 'self';" in policy


def test_https_origin_gets_a_wss_connect_source(tmp_path: Path, dist: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", web_dir=dist)
    with TestClient(create_app(settings), base_url="https://porch.example") as client:
        policy = client.get("/").headers["content-security-policy"]
    assert "connect-src 'self' wss://porch.example;" in policy


def _connect_src(settings: Settings) -> str:
    policy = content_security_policy(settings)
    [directive] = [d for d in policy.split("; ") if d.startswith("connect-src ")]
    return directive.removeprefix("connect-src ")


def test_s3_endpoint_is_the_only_other_connect_source() -> None:
    s3 = Settings(media_backend="s3", s3_endpoint="https://s3.example.net:9000/ignored/path")
    assert "connect-src 'self' https://s3.example.net:9000;" in content_security_policy(s3)
    assert "connect-src 'self';" in content_security_policy(Settings())
    # The filesystem backend serves blobs itself: a leftover S3 endpoint adds nothing.
    leftover = Settings(media_backend="fs", s3_endpoint="https://s3.example.net")
    assert _connect_src(leftover) == "'self'"


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("http://127.0.0.1:8333", "http://127.0.0.1:8333"),
        ("https://media.example.org", "https://media.example.org"),
        ("https://media.example.org/", "https://media.example.org"),
        # The origin a browser compares: default port dropped, host lowercased.
        ("https://Media.Example.ORG:443/porch?x=1#y", "https://media.example.org"),
        ("HTTP://s3.internal:80", "http://s3.internal"),
        ("http://s3.internal:443", "http://s3.internal:443"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        # Credentials in the setting never reach a header.
        ("https://key:secret@s3.example.net:9000", "https://s3.example.net:9000"),
    ],
)
def test_connect_src_names_exactly_the_endpoint_origin(endpoint: str, origin: str) -> None:
    assert endpoint_origin(endpoint) == origin
    settings = Settings(media_backend="s3", s3_endpoint=endpoint)
    assert _connect_src(settings) == f"'self' {origin}"


@pytest.mark.parametrize(
    "endpoint",
    [
        "s3.example.net:9000",  # no scheme
        "ftp://s3.example.net",
        "https://",
        "https://s3.example.net:99999",
        "https://s3.example.net:port",
        "https://s3 example.net",
        "https://s3.example.net;script-src *",
        "https://*.example.net",
        "javascript:alert(1)",
    ],
)
def test_a_malformed_endpoint_adds_no_connect_source(endpoint: str) -> None:
    assert endpoint_origin(endpoint) is None
    assert _connect_src(Settings(media_backend="s3", s3_endpoint=endpoint)) == "'self'"


def test_without_a_built_app_the_api_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "porch.server")
    for client in _client(tmp_path, web_dir=tmp_path / "never-built"):
        assert client.get("/healthz").status_code == 200
        r = client.get("/")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
    assert "make web-dist" in caplog.text


def test_a_checkout_serves_its_own_web_dist() -> None:
    found = default_web_dir()
    assert found == Path(__file__).resolve().parents[3] / "web" / "dist"


def test_a_route_that_does_not_exist_says_what_to_check(client: TestClient) -> None:
    # A server URL with a path after host:port (`--server http://host:8000/porch`) lands here.
    r = client.post("/porch/v1/registration/code", json={})
    assert r.status_code in (404, 405)
    error = r.json()["error"]
    assert error["code"] in ("not_found", "method_not_allowed")
    assert "POST /porch/v1/registration/code" in error["message"]
    assert "no path" in error["message"]
