"""Push service answers as outcomes (RFC 8030), and what of an endpoint may be logged."""

from __future__ import annotations

import pytest

from porch.server.providers.push import PushOutcome, PushSubscription, classify


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "wait"),
    [
        (201, None, PushOutcome.DELIVERED, None),
        (202, None, PushOutcome.DELIVERED, None),
        (410, None, PushOutcome.GONE, None),
        (404, "5", PushOutcome.GONE, None),
        (429, "120", PushOutcome.RETRY, 120.0),
        (503, "Wed, 21 Oct 2015 07:28:00 GMT", PushOutcome.RETRY, None),
        (500, None, PushOutcome.RETRY, None),
        (403, None, PushOutcome.FAILED, None),
    ],
)
def test_classify(
    status: int, retry_after: str | None, outcome: PushOutcome, wait: float | None
) -> None:
    result = classify(status, retry_after)
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, wait)


def test_origin_keeps_the_capability_out_of_logs() -> None:
    sub = PushSubscription(
        "a", 1, "webpush", "https://fcm.googleapis.com:443/fcm/send/SECRET-TOKEN", "", "", 0
    )
    assert sub.origin == "https://fcm.googleapis.com"
    assert "SECRET" not in sub.origin
    token = PushSubscription("a", 1, "apns", "0123abcd", "", "", 0)
    assert token.origin == "(token)"
