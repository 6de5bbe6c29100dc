"""Outside services behind interfaces: SMS verification now, push later."""
