"""Benchmark helpers: a raw protocol client and test-account provisioning (docs/performance.md)."""

from porch.bench.raw import RawConnection, RawDevice, provision

__all__ = ["RawConnection", "RawDevice", "provision"]
