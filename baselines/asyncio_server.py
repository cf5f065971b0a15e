#!/usr/bin/env python3
"""The article's asyncio server, speaking the project's line protocol.

One event loop; each connection is an asyncio.Protocol, and the simulated IO wait is a loop
timer (call_later), as in the article. Run it as
`python3 baselines/asyncio_server.py --port 0 --delay 100 --backlog 4096`; it prints
`listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.

Its default backlog is asyncio.create_server's 100, the article's.
"""

import asyncio
import collections
import signal
import sys

import common

NAME = "python-asyncio"


class Shared:
    """What every connection shares: the delay, the counters, the live connections."""

    def __init__(self, delay):
        self.delay = delay
        self.counters = common.Counters()
        self.live = set()


class LineEcho(asyncio.Protocol):
    """One connection: lines are queued and answered strictly in order, one wait at a time."""

    def __init__(self, shared):
        self.shared = shared
        self.transport = None
        self.partial = bytearray()
        self.queue = collections.deque()
        self.timer = None
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport
        self.shared.live.add(self)
        self.shared.counters.add(connections=1)

    def data_received(self, data):
        self.partial += data
        *lines, rest = self.partial.split(b"\n")
        self.queue.extend(bytes(line) for line in lines)
        self.partial = bytearray(rest)
        if len(self.partial) > common.MAX_LINE_BYTES:
            limit = common.MAX_LINE_BYTES
            self.transport.write(f"ERR line too long (limit {limit} bytes)\n".encode())
            self.shared.counters.add(errors=1)
            self.transport.close()
            return
        self.advance()

    def eof_received(self):
        self.eof = True
        if self.partial:
            self.queue.append(bytes(self.partial))
            self.partial = bytearray()
        self.advance()
        return True  # keep the transport open to write the remaining replies

    def advance(self):
        """Starts the next request's wait, or closes once everything asked has been answered."""
        if self.timer is not None or self.transport.is_closing():
            return
        while self.queue:
            reply = common.reply_for(self.queue.popleft())
            if reply is None:
                self.transport.write(common.INVALID_UTF8)
                self.shared.counters.add(errors=1)
                continue
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.shared.delay, self.finish, reply)
            return
        if self.eof:
            self.transport.close()

    def finish(self, reply):
        self.timer = None
        if self.transport.is_closing():
            return
        self.transport.write(reply)
        self.shared.counters.add(requests=1)
        self.advance()

    def busy(self):
        return self.timer is not None or bool(self.queue)

    def connection_lost(self, exc):
        if exc is not None:
            self.shared.counters.add(errors=1)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.shared.live.discard(self)


async def drain(shared, timeout):
    """Waits, at most `timeout` seconds, for requests already received to be answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(conn.busy() for conn in shared.live) and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def serve(args):
    loop = asyncio.get_running_loop()
    shared = Shared(args.delay)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(
        lambda: LineEcho(shared), args.host, args.port, backlog=args.backlog,
        reuse_address=True)
    common.announce(server.sockets[0].getsockname())
    await stop.wait()
    server.close()
    await drain(shared, args.shutdown_timeout)
    shared.counters.summary(NAME)


def main():
    args = common.parser(__doc__.splitlines()[1], default_backlog=100).parse_args()
    common.raise_nofile_limit()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
