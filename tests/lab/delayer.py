"""Hold each packet of an NFQUEUE for a random delay, then let it through (netem's delay, without netem).

Run inside a lab namespace by tests/lab/netns.py (``Namespace.shape``); the
namespace's iptables sends packets to the queue. Each packet is held for a
uniform random time in [delay - jitter, delay + jitter] ms and then accepted.
Packets are independent, so with jitter they may be reordered, as with netem.

Prints "ready" once bound, so the fixture knows the queue has a reader before it
adds the iptables rule that feeds it. Stops on SIGTERM, accepting anything held.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time

from netfilterqueue import NetfilterQueue, Packet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    low = max(0.0, args.delay_ms - args.jitter_ms) / 1000.0
    high = (args.delay_ms + args.jitter_ms) / 1000.0

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        held: set[asyncio.TimerHandle] = set()
        stop = asyncio.Event()

        def release(pkt: Packet, handle_box: list[asyncio.TimerHandle]) -> None:
            held.discard(handle_box[0])
            pkt.accept()

        def on_packet(pkt: Packet) -> None:
            # Schedule against the loop clock at arrival, so time spent in Python
            # between reads does not add to the delay.
            box: list[asyncio.TimerHandle] = []
            box.append(loop.call_at(loop.time() + rng.uniform(low, high), release, pkt, box))
            held.add(box[0])

        nfqueue = NetfilterQueue()
        # max_len bounds the packets held at once; 4096 covers 1 Hz x 50 targets at any delay used here.
        nfqueue.bind(args.queue, on_packet, max_len=4096)
        fd = nfqueue.get_fd()
        loop.add_reader(fd, lambda: nfqueue.run(block=False))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print("ready", flush=True)
        await stop.wait()
        loop.remove_reader(fd)
        deadline = time.monotonic() + high + 0.1
        while held and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        nfqueue.unbind()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
