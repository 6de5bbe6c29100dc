"""Options of `porch devices` and `porch group` given before their action, and the bounds
that a refused number names (what a trial user met: `porch devices --profile DIR remove 2`
used the default profile)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from porch.cli.exits import bounded
from porch.cli.main import build_parser


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv).parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["devices", "--profile", "/p", "remove", "2"],
        ["devices", "remove", "2", "--profile", "/p"],
        ["devices", "--profile", "/q", "remove", "--profile", "/p", "2"],
        ["devices", "--profile", "/p", "link", "porch://link?x"],
        ["group", "--profile", "/p", "list"],
        ["group", "list", "--profile", "/p"],
        ["devices", "--profile", "/p"],
        ["devices", "list", "--profile", "/p"],
    ],
)
def test_the_profile_given_at_either_level_is_the_one_used(argv: list[str]) -> None:
    assert _parse(argv).profile == Path("/p")


def test_devices_list_is_the_listing_the_help_names() -> None:
    parser = build_parser(["devices", "list"])
    assert parser.parse_args(["devices", "list"]).func is parser.parse_args(["devices"]).func


def test_the_server_given_before_the_action_holds() -> None:
    args = _parse(["group", "--server", "http://h:1", "info", "G"])
    assert args.server == "http://h:1"


@pytest.mark.parametrize(
    "argv",
    [["devices", "remove", "2"], ["group", "list"], ["devices"], ["send", "--to", "@b", "x"]],
)
def test_no_profile_given_is_still_none(argv: list[str]) -> None:
    args = _parse(argv)
    assert args.profile is None
    assert args.server is None


def test_a_whole_number_out_of_range_names_whole_bounds() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"is outside 1\.\.2147483647$"):
        bounded(int, 1, 2**31 - 1)("0")


def test_a_fractional_bound_is_shown_as_given() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"is outside 0\.5\.\.600$"):
        bounded(float, 0.5, 600)("601")
