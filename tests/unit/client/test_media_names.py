"""Safe names for downloaded attachments (the sender chooses the name: untrusted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from porch.client.media_names import MAX_NAME_BYTES, default_name, reserve_name, safe_name
from porch.crypto.content import Attachment


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.exe", "evil.exe"),
        (".bashrc", "bashrc"),
        ("a\x00b\x1b[31m.txt", "ab[31m.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # no right-to-left override
        ("..", ""),
        ("", ""),
        (None, ""),
        ("   ", ""),
    ],
)
def test_safe_name(given: str | None, safe: str) -> None:
    assert safe_name(given) == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("é" * 300 + ".png")
    assert name.endswith(".png") and len(name.encode()) <= MAX_NAME_BYTES


def _pointer(name: str | None, kind: str = "image/png") -> Attachment:
    return Attachment("abcdefghijklmnopqrstuv", bytes(64), bytes(32), 1, kind, name=name)


def test_default_names_come_from_the_content_type() -> None:
    assert default_name(_pointer(None)) == "attachment-abcdefgh.png"
    assert default_name(_pointer(None, "image/jpeg")) == "attachment-abcdefgh.jpg"
    assert default_name(_pointer(None, "application/x-unknown")) == "attachment-abcdefgh"


def test_reserve_name_never_reuses_a_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("mine")
    got = [reserve_name(tmp_path, _pointer("a.txt")).name for _ in range(3)]
    assert got == ["a (1).txt", "a (2).txt", "a (3).txt"]
    assert (tmp_path / "a.txt").read_text() == "mine"
    assert reserve_name(tmp_path, _pointer("README")).name == "README"
    assert reserve_name(tmp_path, _pointer("README")).name == "README (1)"
