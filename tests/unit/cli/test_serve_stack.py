"""`porch serve`'s WebSocket layer: picows by default, websockets by name or as the fallback
when picows does not import (cli/serve.py `ws_stack`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from porch.cli.exits import CommandError
from porch.cli.serve import ws_stack
from porch.server.settings import Settings


@pytest.fixture
def no_picows(monkeypatch: pytest.MonkeyPatch) -> None:
    """picows as on a platform without its wheel: `import picows` raises ImportError."""
    monkeypatch.setitem(sys.modules, "picows", None)
    monkeypatch.delitem(sys.modules, "porch.server.gateway.picows_stack", raising=False)
    monkeypatch.delitem(sys.modules, "porch.server.gateway.picows_socket", raising=False)


def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: str) -> Settings:
    monkeypatch.delenv("PORCH_WS_STACK", raising=False)
    return Settings(data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_picows_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.model_fields["ws_stack"].default == "picows"
    assert ws_stack(settings(tmp_path, monkeypatch)) == "picows"


def test_websockets_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ws_stack(settings(tmp_path, monkeypatch, ws_stack="websockets")) == "websockets"
    monkeypatch.setenv("PORCH_WS_STACK", "websockets")
    assert ws_stack(Settings(data_dir=tmp_path)) == "websockets"


def test_the_default_falls_back_to_websockets_and_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_picows: None,
) -> None:
    with caplog.at_level(logging.WARNING, "porch.server"):
        assert ws_stack(settings(tmp_path, monkeypatch)) == "websockets"
    (record,) = [r for r in caplog.records if r.name == "porch.server"]
    assert "picows" in record.getMessage() and "PORCH_WS_STACK=websockets" in record.getMessage()


def test_picows_by_name_that_does_not_import_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_picows: None
) -> None:
    monkeypatch.setenv("PORCH_WS_STACK", "picows")
    with pytest.raises(CommandError) as err:
        ws_stack(Settings(data_dir=tmp_path))
    assert "PORCH_WS_STACK=websockets" in str(err.value)
    assert "pip install" in str(err.value)
