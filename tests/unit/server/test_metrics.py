"""observe_all and the frame counters: what the registry exposes is what Counters would show."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from porch.server.metrics import Metrics, observe_all

BOUNDS = (0.001, 0.01, 0.1, 1)


def _samples(h: Histogram) -> dict[tuple[str, str], float]:
    [metric] = list(h.collect())
    samples = [s for s in metric.samples if "created" not in s.name]
    return {(s.name, s.labels.get("le", "")): s.value for s in samples}


def test_a_batch_is_counted_as_one_observe_each() -> None:
    values = [0.0, 0.001, 0.0011, 0.05, 0.05, 0.1, 3.0, 99.0, 0.0005]  # on bounds, between, past
    one = Histogram("one", "by observe", buckets=BOUNDS, registry=CollectorRegistry())
    bulk = Histogram("one", "by observe_all", buckets=BOUNDS, registry=CollectorRegistry())
    for v in values:
        one.observe(v)
    observe_all(bulk, values)
    assert _samples(bulk) == _samples(one)
    assert _samples(bulk)[("one_count", "")] == len(values)
    observe_all(bulk, [0.5, 0.5])  # a short batch: observe() itself
    one.observe(0.5)
    one.observe(0.5)
    assert _samples(bulk) == _samples(one)


def test_frame_counts_are_exposed_as_a_labelled_counter_would_be() -> None:
    metrics = Metrics()
    for kind in ("send", "ack", "send"):
        metrics.frame_in(kind)
    metrics.frame_out("sent")
    text = generate_latest(metrics.registry).decode()
    assert 'porch_frames_in_total{type="ack"} 1.0' in text
    assert 'porch_frames_in_total{type="send"} 2.0' in text
    assert 'porch_frames_out_total{type="sent"} 1.0' in text
    assert "# TYPE porch_frames_in_total counter" in text
