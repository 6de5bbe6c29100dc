"""The attachment cipher: Signal's AES-256-CBC + HMAC-SHA256 blobs, streamed in constant memory.

A blob is ``iv || AES-256-CBC(aes_key, iv, PKCS#7(plaintext || zeros)) || HMAC-SHA256(mac_key,
iv || ciphertext)``, where the 64-byte attachment key splits into ``aes_key = key[:32]`` and
``mac_key = key[32:]``, and the zeros pad the plaintext to a size bucket (Signal's
PaddingInputStream) so the server learns only the bucket, not the size. The pointer the sender
puts in the encrypted message carries the key, SHA-256 of the whole blob (the digest) and the
plaintext size (docs/protocol.md, "Attachment encryption").

Receiving is two passes over the downloaded blob: :class:`AttachmentVerifier` checks length,
MAC and digest without releasing a byte of plaintext, then :class:`AttachmentDecryptor` yields
the plaintext. Every class takes and returns bytes (sans-IO); none holds more than the chunk it
is given plus a block or two, whatever the attachment's size.
"""

from __future__ import annotations

import hmac as std_hmac
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from porch.crypto.errors import ATTACHMENT_INVALID, AttachmentTampered, CryptoError

KEY_BYTES: Final = 64
AES_KEY_BYTES: Final = 32
IV_BYTES: Final = 16
MAC_BYTES: Final = 32
DIGEST_BYTES: Final = 32
BLOCK_BYTES: Final = 16
# The hard wire bound on a plaintext size; servers configure a much lower limit.
MAX_ATTACHMENT_SIZE: Final = 2**40
# Signal's bucket formula: nothing smaller than 541 bytes, then buckets 5% apart.
MIN_PADDED_SIZE: Final = 541
BUCKET_GROWTH: Final = 1.05
# finish_chunks() hands out the zero padding (up to 5% of the size) in pieces of this size.
TAIL_CHUNK_BYTES: Final = 1 << 20


def _invalid(message: str) -> NoReturn:
    raise CryptoError(message, code=ATTACHMENT_INVALID)


def _check_bytes(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        _invalid(f"the attachment {what} must be {length} bytes")
    return value


def _check_size(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_ATTACHMENT_SIZE:
        _invalid(f"an attachment size must be an integer from 0 to {MAX_ATTACHMENT_SIZE}")
    return size


def new_key() -> bytes:
    """A fresh random 64-byte attachment key (AES key, then MAC key)."""
    return os.urandom(KEY_BYTES)


def padded_size(size: int) -> int:
    """The plaintext length after zero padding: Signal's bucket for ``size`` bytes."""
    _check_size(size)
    if size == 0:
        return MIN_PADDED_SIZE
    # Floating point exactly as Signal computes it (Math.pow/log/ceil/floor on doubles), so
    # every client agrees on the bucket; the shared vectors pin the edges.
    exponent = math.ceil(math.log(size) / math.log(BUCKET_GROWTH))
    return max(MIN_PADDED_SIZE, math.floor(BUCKET_GROWTH**exponent))


def blob_size(size: int) -> int:
    """Bytes of the blob for a ``size``-byte plaintext: iv, padded ciphertext, MAC."""
    return IV_BYTES + (padded_size(size) // BLOCK_BYTES + 1) * BLOCK_BYTES + MAC_BYTES


def _aes_cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key[:AES_KEY_BYTES]), modes.CBC(iv))


def _new_mac(key: bytes) -> hmac.HMAC:
    return hmac.HMAC(key[AES_KEY_BYTES:], hashes.SHA256())


@dataclass(frozen=True)
class EncryptorSnapshot:
    """An encryptor's state at one point, to continue the identical blob stream later.

    ``consumed`` plaintext bytes have been fed through ``update`` and ``produced`` blob bytes
    handed out. Until the final block, ``produced == IV_BYTES + 16 * ((consumed + zeros) //
    16)``: feeding exactly ``B - IV_BYTES`` bytes (B a multiple of 16) ends on blob offset B,
    so a part boundary at a multiple of 16 can be snapshotted exactly. The rest is opaque; a
    snapshot can be resumed any number of times (it holds key material: keep it in memory).
    """

    consumed: int
    produced: int
    size: int
    zeros: int = field(repr=False)
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)
    # CBC carries on from the last ciphertext block as the next IV; what waits for a full block.
    chain: bytes = field(repr=False)
    pending: bytes = field(repr=False)
    mac: hmac.HMAC = field(repr=False)
    hash: hashes.Hash = field(repr=False)


class AttachmentEncryptor:
    """Plaintext chunks in, blob bytes out; exactly ``size`` plaintext bytes must be fed."""

    def __init__(self, key: bytes, size: int, *, iv: bytes | None = None) -> None:
        key = _check_bytes(key, KEY_BYTES, "key")
        size = _check_size(size)
        iv = os.urandom(IV_BYTES) if iv is None else _check_bytes(iv, IV_BYTES, "iv")
        start = EncryptorSnapshot(
            consumed=0,
            produced=0,
            size=size,
            zeros=0,
            key=key,
            iv=iv,
            chain=iv,
            pending=b"",
            mac=_new_mac(key),
            hash=hashes.Hash(hashes.SHA256()),
        )
        self._load(start)

    @classmethod
    def resume(cls, snapshot: EncryptorSnapshot) -> AttachmentEncryptor:
        """An encryptor that produces the bytes the snapshotted one would have produced next."""
        encryptor = cls.__new__(cls)
        encryptor._load(snapshot)
        return encryptor

    def _load(self, state: EncryptorSnapshot) -> None:
        self._key = state.key
        self._iv = state.iv
        self._size = state.size
        self._consumed = state.consumed
        self._zeros = state.zeros
        self._produced = state.produced
        self._chain = state.chain
        self._pending = state.pending
        self._mac = state.mac.copy()
        self._hash = state.hash.copy()
        self._cbc: CipherContext = _aes_cbc(state.key, state.chain).encryptor()
        self._digest: bytes | None = None

    @property
    def consumed(self) -> int:
        return self._consumed

    @property
    def produced(self) -> int:
        return self._produced

    def snapshot(self) -> EncryptorSnapshot:
        if self._digest is not None:
            _invalid("the attachment is already encrypted; there is nothing to resume")
        return EncryptorSnapshot(
            consumed=self._consumed,
            produced=self._produced,
            size=self._size,
            zeros=self._zeros,
            key=self._key,
            iv=self._iv,
            chain=self._chain,
            pending=self._pending,
            mac=self._mac.copy(),
            hash=self._hash.copy(),
        )

    def update(self, chunk: bytes) -> bytes:
        """Encrypt the next plaintext bytes; the first call's output starts with the iv."""
        if self._digest is not None:
            _invalid("the attachment is already encrypted")
        if self._consumed + len(chunk) > self._size:
            _invalid(f"more than the declared {self._size} bytes were fed to the encryptor")
        self._consumed += len(chunk)
        return self._encrypt(chunk)

    def finish(self) -> bytes:
        """The zero padding, the final PKCS#7 block and the MAC (see :meth:`finish_chunks`)."""
        return b"".join(self.finish_chunks())

    def finish_chunks(self, chunk_size: int = TAIL_CHUNK_BYTES) -> Iterator[bytes]:
        """What :meth:`finish` returns, in pieces of about ``chunk_size`` bytes.

        The zero padding is up to 5% of the size; a streaming uploader takes it piece by piece
        (and may snapshot between pieces) instead of holding it all at once.
        """
        if self._digest is not None:
            _invalid("the attachment is already encrypted")
        if self._consumed != self._size:
            _invalid(f"{self._consumed} bytes were fed to the encryptor, not {self._size}")
        if not isinstance(chunk_size, int) or chunk_size < BLOCK_BYTES:
            _invalid(f"the chunk size must be at least {BLOCK_BYTES} bytes")
        return self._tail(chunk_size)

    def _tail(self, chunk_size: int) -> Iterator[bytes]:
        total_zeros = padded_size(self._size) - self._size
        while self._zeros < total_zeros:
            count = min(chunk_size, total_zeros - self._zeros)
            self._zeros += count
            yield self._encrypt(bytes(count))
        padder = padding.PKCS7(BLOCK_BYTES * 8).padder()
        last = padder.update(self._pending) + padder.finalize()
        self._pending = b""
        out = self._emit(self._cbc.update(last) + self._cbc.finalize())
        tag = self._mac.finalize()
        self._hash.update(tag)
        self._produced += len(tag)
        self._digest = self._hash.finalize()
        yield out + tag

    @property
    def digest(self) -> bytes:
        """SHA-256 of the whole blob, once :meth:`finish` has returned."""
        if self._digest is None:
            _invalid("the digest is known only after the encryptor finished")
        return self._digest

    def _encrypt(self, data: bytes) -> bytes:
        # CBC needs whole blocks; up to 15 bytes wait in `pending` for the next call.
        buffer = self._pending + data if self._pending else data
        whole = len(buffer) - len(buffer) % BLOCK_BYTES
        self._pending = bytes(buffer[whole:])
        ciphertext = self._cbc.update(memoryview(buffer)[:whole]) if whole else b""
        if ciphertext:
            self._chain = ciphertext[-BLOCK_BYTES:]
        return self._emit(ciphertext)

    def _emit(self, ciphertext: bytes) -> bytes:
        out = ciphertext if self._produced else self._iv + ciphertext
        self._mac.update(out)
        self._hash.update(out)
        self._produced += len(out)
        return out


def _tampered(message: str) -> NoReturn:
    raise AttachmentTampered(message)


class _BlobReader:
    """Counts a downloaded blob against its expected length and holds back the trailing MAC,
    in O(1) memory; shared by both receive passes."""

    def __init__(self, size: int) -> None:
        self._expected = blob_size(size)
        self._received = 0
        self._tail = b""

    def read(self, chunk: bytes) -> bytes:
        """The bytes of the stream so far that are certainly not part of the trailing MAC."""
        self._received += len(chunk)
        if self._received > self._expected:
            # Refused at once: no need to download the rest of an oversized blob.
            _tampered("the attachment is longer than its pointer says")
        if len(chunk) >= MAC_BYTES:
            body = self._tail + chunk[:-MAC_BYTES]
            self._tail = bytes(chunk[-MAC_BYTES:])  # a copy: the caller may reuse its buffer
            return body
        buffer = self._tail + chunk
        cut = max(0, len(buffer) - MAC_BYTES)
        self._tail = buffer[cut:]
        return buffer[:cut]

    def close(self) -> bytes:
        """The trailing MAC, once the whole blob has been read."""
        if self._received != self._expected:
            _tampered("the attachment is shorter than its pointer says")
        return self._tail


class AttachmentVerifier:
    """Pass 1 over a downloaded blob: length, MAC and digest; never any plaintext."""

    def __init__(self, key: bytes, digest: bytes, size: int) -> None:
        key = _check_bytes(key, KEY_BYTES, "key")
        self._digest = _check_bytes(digest, DIGEST_BYTES, "digest")
        self._reader = _BlobReader(_check_size(size))
        self._mac = _new_mac(key)
        self._hash = hashes.Hash(hashes.SHA256())
        self._done = False

    def update(self, chunk: bytes) -> None:
        if self._done:
            _invalid("the verifier already finished")
        body = self._reader.read(chunk)
        self._hash.update(chunk)
        self._mac.update(body)

    def finish(self) -> None:
        """Return if the blob is the one the pointer names; raise AttachmentTampered if not."""
        if self._done:
            _invalid("the verifier already finished")
        self._done = True
        tag = self._reader.close()
        actual = self._hash.finalize()
        try:
            self._mac.verify(tag)  # constant-time
        except InvalidSignature:
            _tampered("the attachment's MAC does not match its key")
        if not std_hmac.compare_digest(actual, self._digest):
            _tampered("the attachment's digest does not match its pointer")


class AttachmentDecryptor:
    """Pass 2, only after :class:`AttachmentVerifier` passed: blob bytes in, plaintext out.

    Yields at most ``size`` bytes, and refuses (AttachmentTampered) a blob whose padding after
    ``size`` is not all zeros or whose PKCS#7 padding is malformed: checks that cannot fail on
    a verified blob from an honest sender, kept so a bad sender cannot hide bytes in a file.
    """

    def __init__(self, key: bytes, size: int) -> None:
        self._key = _check_bytes(key, KEY_BYTES, "key")
        self._size = _check_size(size)
        self._padded = padded_size(size)
        self._reader = _BlobReader(size)
        self._iv = b""
        self._cbc: CipherContext | None = None
        self._unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
        self._position = 0  # bytes of padded plaintext seen
        self._done = False

    def update(self, chunk: bytes) -> bytes:
        if self._done:
            _invalid("the decryptor already finished")
        body = self._reader.read(chunk)
        if self._cbc is None:
            need = IV_BYTES - len(self._iv)
            self._iv += body[:need]
            body = body[need:]
            if len(self._iv) < IV_BYTES:
                return b""
            self._cbc = _aes_cbc(self._key, self._iv).decryptor()
        return self._release(self._unpadder.update(self._cbc.update(body)))

    def finish(self) -> bytes:
        if self._done:
            _invalid("the decryptor already finished")
        self._done = True
        self._reader.close()
        if self._cbc is None:  # unreachable: a full-length blob is longer than its iv
            _tampered("the attachment is shorter than its pointer says")
        try:
            last = self._unpadder.update(self._cbc.finalize()) + self._unpadder.finalize()
        except ValueError:
            _tampered("the attachment's block padding is malformed")
        out = self._release(last)
        if self._position != self._padded:
            _tampered("the attachment's padded length does not match its size")
        return out

    def _release(self, data: bytes) -> bytes:
        keep = max(0, min(len(data), self._size - self._position))
        rest = memoryview(data)[keep:]
        self._position += len(data)
        if self._position > self._padded:
            _tampered("the attachment's padded length does not match its size")
        if rest and bytes(rest).count(0) != len(rest):
            _tampered("the attachment has non-zero bytes after its end")
        return data[:keep]


def encrypt_attachment(
    data: bytes, key: bytes | None = None, iv: bytes | None = None
) -> tuple[bytes, bytes, bytes]:
    """One-shot encryption of a small attachment: ``(blob, key, digest)``."""
    key = new_key() if key is None else key
    encryptor = AttachmentEncryptor(key, len(data), iv=iv)
    blob = encryptor.update(data) + encryptor.finish()
    return blob, key, encryptor.digest


def decrypt_attachment(blob: bytes, key: bytes, digest: bytes, size: int) -> bytes:
    """One-shot verify-then-decrypt; raises AttachmentTampered before any plaintext exists."""
    verifier = AttachmentVerifier(key, digest, size)
    verifier.update(blob)
    verifier.finish()
    decryptor = AttachmentDecryptor(key, size)
    return decryptor.update(blob) + decryptor.finish()
