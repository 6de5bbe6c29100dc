"""Delivery bus: tells the node holding a device's connection that something is for it."""

from porch.server.bus.base import Bus, DeviceEvent
from porch.server.bus.memory import MemoryBus

__all__ = ["Bus", "DeviceEvent", "MemoryBus"]
