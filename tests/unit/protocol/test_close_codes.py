"""Close codes: one definition, the values clients already branch on."""

from __future__ import annotations

from pathlib import Path

from porch.protocol.close_codes import CloseCode

DOCS = Path(__file__).parents[3] / "docs" / "protocol.md"


def test_the_application_codes_keep_their_values() -> None:
    assert (CloseCode.AUTH, CloseCode.REPLACED) == (4401, 4409)
    assert CloseCode(4401) is CloseCode.AUTH


def test_codes_are_in_their_rfc_6455_ranges() -> None:
    for code in CloseCode:
        assert 1000 <= code <= 1015 or 4000 <= code <= 4999, code


def test_every_code_sent_on_the_wire_is_in_the_docs_table() -> None:
    section = DOCS.read_text(encoding="utf-8").split("\nClose codes (", 1)[1]
    table = section.split("\n\n", 2)[1]
    for code in CloseCode:
        if code not in (CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.ABNORMAL):
            assert f"| {int(code)} (`{code.name}`) |" in table, code
