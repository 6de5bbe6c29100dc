"""A bare WebSocket relay, the baseline of `porch bench` (now src/porch/bench/relay.py).

python bench/relay.py --port 8765      # prints "relay listening on 127.0.0.1:PORT"
"""

from porch.bench.relay import cli

if __name__ == "__main__":
    cli()
