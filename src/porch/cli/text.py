"""Text from other people, made safe to show in a terminal.

Message bodies, device names, labels and error messages from the server are chosen by someone
else. Written raw to a terminal, control characters act: ESC starts a sequence that can move
the cursor, recolour or retitle the window, or (on some terminals) answer back into the input;
BEL rings; CR and backspace overwrite what was printed; bidirectional overrides (the "Trojan
Source" characters, CVE-2021-42574) reorder what is shown. `printable` replaces each of them
with a visible escape, so the text is shown, never obeyed. `--json` output is not passed
through it: JSON escapes control characters itself and stays exact.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (Unicode category Cc); the bidi embeddings, overrides,
# isolates and marks (Unicode Bidirectional Algorithm, UAX #9); the line and paragraph
# separators (which some terminals treat as newlines); lone surrogates (not printable at all).
# Zero-width joiners stay: emoji sequences need them.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    point = ord(char)
    return f"\\x{point:02x}" if point <= 0xFF else f"\\u{point:04x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """text with every control character shown as an escape (ESC as ``\\x1b``).

    With multiline, a newline stays a newline and the lines after it are indented, so a
    message cannot forge a line that looks like the start of another message."""
    if not multiline:
        return _UNSAFE.sub(_escape, text)
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n    ".join(_UNSAFE.sub(_escape, line) for line in lines)


def one_line(text: str, width: int) -> str:
    """printable text on one line (newlines as spaces), cut to width characters."""
    flat = printable(" ".join(text.split("\n")))
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"
