"""The attachment cipher (docs/protocol.md, "Attachment encryption") and its shared vectors."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from porch.crypto import AttachmentTampered, CryptoError
from porch.crypto.attachment import (
    MAX_ATTACHMENT_SIZE,
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentVerifier,
    blob_size,
    decrypt_attachment,
    encrypt_attachment,
    new_key,
    padded_size,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "attachment.json").read_text("utf-8")
)
KEY = bytes.fromhex(VECTORS["key_hex"])
IV = bytes.fromhex(VECTORS["iv_hex"])


def pattern(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


def independent_blob(plaintext: bytes, key: bytes, iv: bytes, padded: int) -> bytes:
    """The blob built from one-shot primitives and the standard library, not the module."""
    padder = padding.PKCS7(128).padder()
    body = padder.update(plaintext + bytes(padded - len(plaintext))) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key[:32]), modes.CBC(iv)).encryptor()
    signed = iv + encryptor.update(body) + encryptor.finalize()
    return signed + hmac.digest(key[32:], signed, "sha256")


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stream_encrypt(data: Iterable[bytes], key: bytes, size: int, iv: bytes) -> tuple[bytes, bytes]:
    encryptor = AttachmentEncryptor(key, size, iv=iv)
    blob = b"".join(encryptor.update(chunk) for chunk in data) + encryptor.finish()
    return blob, encryptor.digest


def verify(blob: bytes, key: bytes, digest: bytes, size: int, chunk: int = 4096) -> None:
    verifier = AttachmentVerifier(key, digest, size)
    for piece in chunks(blob, chunk):
        verifier.update(piece)
    verifier.finish()


def decrypt(blob: bytes, key: bytes, size: int, chunk: int = 4096) -> bytes:
    decryptor = AttachmentDecryptor(key, size)
    out = b"".join(decryptor.update(piece) for piece in chunks(blob, chunk))
    return out + decryptor.finish()


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: str(c["size"]))
def test_vectors(case: dict[str, Any]) -> None:
    size = case["size"]
    plaintext = pattern(size)
    if "plaintext_hex" in case:
        assert plaintext.hex() == case["plaintext_hex"]
    assert padded_size(size) == case["padded_size"]
    assert blob_size(size) == case["blob_size"]
    blob, _, digest = encrypt_attachment(plaintext, KEY, IV)
    assert len(blob) == case["blob_size"]
    if "blob_hex" in case:
        assert blob.hex() == case["blob_hex"]
    else:
        assert hashlib.sha256(blob).hexdigest() == case["blob_sha256"]
    assert digest.hex() == case["digest_hex"] == hashlib.sha256(blob).hexdigest()
    assert decrypt_attachment(blob, KEY, digest, size) == plaintext


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: str(c["size"]))
def test_vectors_match_an_independent_construction(case: dict[str, Any]) -> None:
    blob = independent_blob(pattern(case["size"]), KEY, IV, case["padded_size"])
    if "blob_hex" in case:
        assert blob.hex() == case["blob_hex"]
    else:
        assert hashlib.sha256(blob).hexdigest() == case["blob_sha256"]


def signal_bucket(size: int) -> int:
    """Signal's buckets found by walking the 5% steps, without the closed formula's logs."""
    bucket, power = 1, 1.0
    while bucket < size:
        power *= 1.05
        bucket = math.floor(power)
    return max(541, bucket)


def test_padded_size_edges() -> None:
    for size, expected in VECTORS["padded_size_edges"]:
        assert padded_size(size) == expected
    # Signal's first buckets, as its PaddingInputStream produces them.
    assert [padded_size(n) for n in (541, 542, 569, 597, 627)] == [541, 568, 596, 626, 657]


def test_padded_size_matches_signal_at_every_bucket_edge_and_is_monotone() -> None:
    previous = padded_size(0)
    assert previous == 541
    power = 1.0
    while power < 2**24:
        edge = math.floor(power)
        for size in (edge - 1, edge, edge + 1):
            if size >= 1:
                assert padded_size(size) == signal_bucket(size)
        power *= 1.05
    for size in range(1, 20_000, 7):
        current = padded_size(size)
        assert size <= current >= previous
        assert current <= max(541, size * 1.05 + 1)
        previous = current
    assert padded_size(MAX_ATTACHMENT_SIZE) >= MAX_ATTACHMENT_SIZE


@pytest.mark.parametrize("size", [-1, MAX_ATTACHMENT_SIZE + 1, True, 1.0])
def test_sizes_out_of_range_are_invalid(size: Any) -> None:
    with pytest.raises(CryptoError) as caught:
        padded_size(size)
    assert caught.value.code == "attachment_invalid"
    with pytest.raises(CryptoError):
        AttachmentEncryptor(KEY, size)


@pytest.mark.parametrize(
    ("key", "iv"), [(KEY[:63], IV), (KEY + b"x", IV), (KEY, IV[:15]), ("k" * 64, IV)]
)
def test_bad_keys_and_ivs_are_invalid(key: Any, iv: Any) -> None:
    with pytest.raises(CryptoError) as caught:
        AttachmentEncryptor(key, 10, iv=iv)
    assert caught.value.code == "attachment_invalid"
    assert not isinstance(caught.value, AttachmentTampered)


def test_new_keys_are_random_and_sized() -> None:
    assert len(new_key()) == 64
    assert new_key() != new_key()
    blob_a, key_a, _ = encrypt_attachment(b"same")
    blob_b, key_b, _ = encrypt_attachment(b"same")
    assert key_a != key_b and blob_a[:16] != blob_b[:16]


@pytest.mark.parametrize("chunk", [1, 3, 15, 16, 17, 31, 32, 33, 1000, 4097])
def test_streaming_in_odd_chunks_equals_one_shot(chunk: int) -> None:
    data = os.urandom(5000)
    one_shot, _, digest = encrypt_attachment(data, KEY, IV)
    streamed, streamed_digest = stream_encrypt(chunks(data, chunk), KEY, len(data), IV)
    assert streamed == one_shot and streamed_digest == digest
    verify(one_shot, KEY, digest, len(data), chunk)
    assert decrypt(one_shot, KEY, len(data), chunk) == data


def test_a_reused_read_buffer_is_safe() -> None:
    # A streaming reader may refill one bytearray for every chunk (readinto).
    data = os.urandom(10_000)
    blob, key, digest = encrypt_attachment(data, KEY, IV)
    buffer = bytearray(777)
    encryptor = AttachmentEncryptor(KEY, len(data), iv=IV)
    verifier = AttachmentVerifier(key, digest, len(data))
    out = b""
    for piece in chunks(data, 777):
        buffer[: len(piece)] = piece
        out += encryptor.update(bytes(memoryview(buffer)[: len(piece)]))
    assert out + encryptor.finish() == blob
    for piece in chunks(blob, 777):
        buffer[: len(piece)] = piece
        verifier.update(memoryview(buffer)[: len(piece)])
    verifier.finish()


def test_first_output_starts_with_the_iv_even_for_tiny_chunks() -> None:
    encryptor = AttachmentEncryptor(KEY, 3, iv=IV)
    assert encryptor.update(b"a") == IV
    assert encryptor.update(b"") == b""
    empty = AttachmentEncryptor(KEY, 0, iv=IV)
    assert empty.finish()[:16] == IV


def test_encrypting_a_different_byte_count_than_declared_is_invalid() -> None:
    encryptor = AttachmentEncryptor(KEY, 10, iv=IV)
    encryptor.update(b"x" * 9)
    with pytest.raises(CryptoError) as short:
        encryptor.finish()
    assert short.value.code == "attachment_invalid"
    with pytest.raises(CryptoError) as long:
        encryptor.update(b"yy")
    assert long.value.code == "attachment_invalid"
    with pytest.raises(CryptoError):
        _ = encryptor.digest  # not finished
    encryptor.update(b"y")
    encryptor.finish()
    for late in (lambda: encryptor.update(b""), encryptor.finish, encryptor.snapshot):
        with pytest.raises(CryptoError) as caught:
            late()
        assert caught.value.code == "attachment_invalid"


def sample() -> tuple[bytes, bytes, bytes, bytes]:
    data = os.urandom(3000)
    blob, key, digest = encrypt_attachment(data)
    return data, blob, key, digest


def assert_tampered(blob: bytes, key: bytes, digest: bytes, size: int) -> None:
    with pytest.raises(AttachmentTampered) as caught:
        verify(blob, key, digest, size)
    assert caught.value.code == "attachment_tampered"
    with pytest.raises(AttachmentTampered):
        decrypt_attachment(blob, key, digest, size)


@pytest.mark.parametrize("where", [0, 15, 16, 1500, -49, -33, -32, -1])
def test_any_flipped_byte_is_tampered(where: int) -> None:
    data, blob, key, digest = sample()
    changed = bytearray(blob)
    changed[where] ^= 0x01
    assert_tampered(bytes(changed), key, digest, len(data))


@pytest.mark.parametrize("cut", [1, 16, 32, 48])
def test_truncated_blob_is_tampered(cut: int) -> None:
    data, blob, key, digest = sample()
    assert_tampered(blob[:-cut], key, digest, len(data))


@pytest.mark.parametrize("extra", [b"\x00", bytes(16), os.urandom(100)])
def test_extended_blob_is_refused_as_soon_as_it_is_too_long(extra: bytes) -> None:
    data, blob, key, digest = sample()
    verifier = AttachmentVerifier(key, digest, len(data))
    verifier.update(blob)
    with pytest.raises(AttachmentTampered):
        verifier.update(extra)
    assert_tampered(blob + extra, key, digest, len(data))


def test_wrong_key_digest_or_size_is_tampered() -> None:
    data, blob, key, digest = sample()
    assert_tampered(blob, new_key(), digest, len(data))
    assert_tampered(blob, key[:32] + new_key()[32:], digest, len(data))
    assert_tampered(blob, key, hashlib.sha256(b"other").digest(), len(data))
    assert_tampered(blob, key, digest, len(data) * 2)


def test_non_zero_bytes_after_the_size_are_refused() -> None:
    # A sender who lies about the size (same bucket, valid MAC and digest) cannot smuggle
    # bytes past the end: the decryptor refuses them instead of truncating silently.
    blob, key, digest = encrypt_attachment(b"abc")
    verify(blob, key, digest, 2)
    with pytest.raises(AttachmentTampered) as caught:
        decrypt_attachment(blob, key, digest, 2)
    assert caught.value.code == "attachment_tampered"
    # The honest size, and a smaller size over zero padding, are accepted.
    assert decrypt_attachment(blob, key, digest, 3) == b"abc"
    zeros, key2, digest2 = encrypt_attachment(b"ab\x00\x00")
    assert decrypt_attachment(zeros, key2, digest2, 2) == b"ab"


def test_malformed_block_padding_with_a_valid_mac_is_refused() -> None:
    body = pattern(10) + bytes(541 - 10) + b"\x05\x05\x05"  # PKCS#7 would be 03 03 03
    encryptor = Cipher(algorithms.AES(KEY[:32]), modes.CBC(IV)).encryptor()
    signed = IV + encryptor.update(body) + encryptor.finalize()
    blob = signed + hmac.digest(KEY[32:], signed, "sha256")
    digest = hashlib.sha256(blob).digest()
    verify(blob, KEY, digest, 10)
    with pytest.raises(AttachmentTampered):
        decrypt_attachment(blob, KEY, digest, 10)


def test_verifier_and_decryptor_refuse_use_after_finish() -> None:
    data, blob, key, digest = sample()
    verifier = AttachmentVerifier(key, digest, len(data))
    verifier.update(blob)
    verifier.finish()
    decryptor = AttachmentDecryptor(key, len(data))
    assert decryptor.update(blob) + decryptor.finish() == data
    for late in (verifier.finish, lambda: verifier.update(b""), decryptor.finish):
        with pytest.raises(CryptoError) as caught:
            late()
        assert caught.value.code == "attachment_invalid"


PART = 64 * 1024  # blob bytes per upload part in these tests (a multiple of 16)


def test_resume_at_part_boundaries_reproduces_the_stream() -> None:
    data = os.urandom(5 * PART + 12345)
    full, digest = stream_encrypt(chunks(data, 1000), KEY, len(data), IV)
    for boundary in range(PART, 5 * PART + 1, PART):
        # Feeding boundary - 16 plaintext bytes ends exactly on the blob offset `boundary`.
        encryptor = AttachmentEncryptor(KEY, len(data), iv=IV)
        head = encryptor.update(data[: boundary - 16])
        snapshot = encryptor.snapshot()
        assert (snapshot.consumed, snapshot.produced) == (boundary - 16, boundary)
        assert head == full[:boundary]
        for _ in range(2):  # a snapshot is reusable: a part may fail more than once
            resumed = AttachmentEncryptor.resume(snapshot)
            rest = resumed.update(data[snapshot.consumed :]) + resumed.finish()
            assert rest == full[boundary:] and resumed.digest == digest
        # The original is unaffected by resuming its snapshots.
        assert head + encryptor.update(data[boundary - 16 :]) + encryptor.finish() == full


def test_resume_from_an_unaligned_point_and_inside_the_padding() -> None:
    data = os.urandom(200_000)
    full, digest = stream_encrypt([data], KEY, len(data), IV)
    encryptor = AttachmentEncryptor(KEY, len(data), iv=IV)
    encryptor.update(data[:77_777])
    snapshot = encryptor.snapshot()
    resumed = AttachmentEncryptor.resume(snapshot)
    rest = resumed.update(data[snapshot.consumed :]) + resumed.finish()
    assert rest == full[snapshot.produced :]
    # Within the zero padding (this size pads by 9 kB): snapshot between finish pieces.
    encryptor = AttachmentEncryptor(KEY, len(data), iv=IV)
    out = encryptor.update(data)
    tail = encryptor.finish_chunks(1024)
    out += next(tail) + next(tail)
    snapshot = encryptor.snapshot()
    assert snapshot.consumed == len(data) and snapshot.produced == len(out)
    resumed = AttachmentEncryptor.resume(snapshot)
    assert out + b"".join(resumed.finish_chunks(4096)) == full
    assert resumed.digest == digest
    assert out + b"".join(tail) == full and encryptor.digest == digest


def test_snapshot_repr_shows_no_key_material() -> None:
    encryptor = AttachmentEncryptor(KEY, 100, iv=IV)
    encryptor.update(b"x" * 40)
    text = repr(encryptor.snapshot())
    assert "consumed=40" in text and KEY.hex() not in text and repr(KEY) not in text


def test_a_64_mib_stream_uses_bounded_memory() -> None:
    size, chunk = 64 * 1024 * 1024, 1024 * 1024
    block = os.urandom(chunk)
    key = new_key()

    def blob_pieces() -> Iterator[bytes]:
        encryptor = AttachmentEncryptor(key, size, iv=IV)
        for _ in range(size // chunk):
            yield encryptor.update(block)
        yield from encryptor.finish_chunks()

    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        for piece in blob_pieces():
            digest.update(piece)
        verifier = AttachmentVerifier(key, digest.digest(), size)
        decryptor = AttachmentDecryptor(key, size)
        plain = 0
        for piece in blob_pieces():
            verifier.update(piece)
            plain += len(decryptor.update(piece))
        verifier.finish()
        plain += len(decryptor.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plain == size
    assert peak < 8 * 1024 * 1024
