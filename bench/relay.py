"""The baseline relays of `porch bench`, on their own (src/porch/bench/protocol_relay.py and
bare_relay.py).

python bench/relay.py --port 8765          # the protocol relay (Porch's frames, no durability)
python bench/relay.py --bare --port 8765   # the bare relay (frames forwarded untouched)
"""

import sys

from porch.bench import bare_relay, protocol_relay

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--bare" in argv:
        argv.remove("--bare")
        bare_relay.cli(argv)
    else:
        protocol_relay.cli(argv)
