"""Prometheus metrics, one registry per app so that several apps can share a process (tests)."""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

BULK_OBSERVE_FROM = 4  # fewer values than this are observed one by one (observe_all)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "porch_connections", "Authenticated WebSocket connections", registry=r
        )
        self.frames_in = FrameCounts("porch_frames_in", "Frames received, by type")
        self.frames_out = FrameCounts("porch_frames_out", "Frames sent, by type")
        r.register(self.frames_in)
        r.register(self.frames_out)
        self.errors = Counter(
            "porch_errors", "Error frames and responses, by code", ["code"], registry=r
        )
        self.messages_stored = Counter("porch_messages_stored", "Envelopes persisted", registry=r)
        self.messages_delivered = Counter(
            "porch_messages_delivered", "Envelopes acknowledged by their device", registry=r
        )
        self.envelopes_rejected = Counter(
            "porch_envelopes_rejected",
            "Envelopes a device could not take and rejected (deleted), by reason",
            ["reason"],
            registry=r,
        )
        self.envelopes_too_large = Counter(
            "porch_envelopes_too_large",
            "Envelopes too large for a server frame, sent as a too_large marker instead",
            registry=r,
        )
        self.queue_depth = Gauge("porch_queue_depth", "Envelopes waiting for a device", registry=r)
        self.delivery_latency = Histogram(
            "porch_send_to_deliver_seconds",
            "From the commit of an envelope to its hand-off to the recipient's connection",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 60, 3600),
            registry=r,
        )
        self.media_swept = Counter(
            "porch_media_swept",
            "Media blobs and unfinished uploads deleted by the sweep",
            registry=r,
        )
        self.media_swept_bytes = Counter(
            "porch_media_swept_bytes", "Bytes of the media blobs the sweep deleted", registry=r
        )
        self.pushes = Counter(
            "porch_pushes",
            "Push wake-ups, by outcome (delivered, gone, failed, dropped, coalesced, online)",
            ["outcome"],
            registry=r,
        )
        # Labelled children looked up once: labels() takes a lock and hashes on every call.
        self._pushes: dict[str, Counter] = {}
        # One frame of this type in, or out: the counters' own method, no call in between.
        self.frame_in = self.frames_in.add
        self.frame_out = self.frames_out.add

    def push(self, outcome: str, n: int = 1) -> None:
        """n push wake-ups with this outcome: once per batch of a group message ("online")."""
        child = self._pushes.get(outcome)
        if child is None:
            child = self._pushes[outcome] = self.pushes.labels(outcome)
        child.inc(n)


class FrameCounts:
    """A counter by frame type as plain integers, which the registry reads when it is scraped:
    a prometheus_client Counter takes a lock on every inc(), and a message is three or four
    frames (3% of the event loop at the maximum rate, issue 10). Counted on the event loop
    only, as every frame is; exposed as `<name>_total{type=...}`, as a Counter would be."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self.counts: dict[str, int] = {}

    def add(self, kind: str) -> None:
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=["type"])
        for kind, n in sorted(self.counts.items()):
            family.add_metric([kind], n)
        yield family


def observe_all(histogram: Histogram, values: list[float]) -> None:
    """values into an unlabelled histogram, as one observe() each would put them, with one
    lock per bucket touched instead of two per value: a backlog's batch of envelopes is one
    call (issue 10). prometheus_client has no bulk observe, so this adds to the histogram's
    own sum and buckets (`_sum`, `_buckets`, `_upper_bounds`, there since 0.4), and falls back
    to observe() if they are not there."""
    bounds: list[float] | None = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if len(values) < BULK_OBSERVE_FROM or bounds is None or buckets is None or total is None:
        for v in values:
            histogram.observe(v)
        return
    # observe() counts a value in the first bucket whose bound is >= it (the last is +Inf).
    counts = collections.Counter(bisect.bisect_left(bounds, v) for v in values)
    total.inc(sum(values))
    for i, n in counts.items():
        buckets[i].inc(n)
