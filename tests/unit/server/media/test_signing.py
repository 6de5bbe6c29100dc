"""Signed media URLs: each verifies for its own method, path and expiry only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from porch.server.media.signing import UrlSigner, derive_key, signature

NOW = 1_700_000_000_000
PATH = "/v1/media/parts/AAAAAAAAAAAAAAAAAAAAAA/1"


def signer(key: bytes = b"k" * 32) -> UrlSigner:
    async def load() -> bytes:
        return key

    return UrlSigner(load)


def sig_of(url: str) -> tuple[int, str]:
    query = parse_qs(urlsplit(url).query)
    return int(query["exp"][0]), query["sig"][0]


async def test_a_signed_url_verifies_until_it_expires() -> None:
    s = signer()
    url = await s.sign("PUT", PATH, NOW + 1000)
    assert urlsplit(url).path == PATH
    exp, sig = sig_of(url)
    assert exp == NOW + 1000 and len(sig) == 43
    assert await s.verify("PUT", PATH, exp, sig, NOW)
    assert await s.verify("PUT", PATH, exp, sig, NOW + 999)
    assert not await s.verify("PUT", PATH, exp, sig, NOW + 1000)  # expired
    assert not await s.verify("PUT", PATH, exp, sig, NOW + 5000)


async def test_another_method_path_expiry_or_key_fails() -> None:
    s = signer()
    exp, sig = sig_of(await s.sign("PUT", PATH, NOW + 1000))
    assert not await s.verify("GET", PATH, exp, sig, NOW)
    assert not await s.verify("PUT", PATH[:-1] + "2", exp, sig, NOW)
    assert not await s.verify("PUT", PATH, exp + 1, sig, NOW)  # a longer life is not bought
    assert not await signer(b"o" * 32).verify("PUT", PATH, exp, sig, NOW)


@pytest.mark.parametrize("bad", ["", "x", "A" * 42, "A" * 44, "+" * 43, "=" * 43])
async def test_malformed_signatures_fail(bad: str) -> None:
    assert not await signer().verify("PUT", PATH, NOW + 1000, bad, NOW)


async def test_a_tampered_signature_fails() -> None:
    s = signer()
    exp, sig = sig_of(await s.sign("GET", PATH, NOW + 1000))
    flipped = ("A" if sig[5] != "A" else "B").join([sig[:5], sig[6:]])
    assert not await s.verify("GET", PATH, exp, flipped, NOW)


async def test_the_key_is_loaded_once() -> None:
    loads = 0

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        return b"k" * 32

    s = UrlSigner(load)
    for _ in range(3):
        await s.sign("GET", PATH, NOW)
    assert loads == 1


def test_the_key_is_derived_not_the_secret_itself() -> None:
    key = derive_key(b"server secret")
    assert len(key) == 32 and key != b"server secret" and key == derive_key(b"server secret")
    assert derive_key(b"other") != key
    assert signature(key, "get", PATH, 5) == signature(key, "GET", PATH, 5)
