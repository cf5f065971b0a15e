#!/usr/bin/env python3
"""The article's threaded server, speaking the project's line protocol.

A thread per connection (socketserver.ThreadingTCPServer, as in the author's timed version),
and the simulated IO wait is time.sleep in that thread, exactly as in the article (also for a
`block` phase; a `spin` phase busy-loops in that thread instead; a recipe's phases run in
order). Run it as
`python3 baselines/threaded_server.py --port 0 --delay 100 --backlog 4096`; it prints
`listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.

Its default backlog is socketserver's 5, the article's: on Linux that drops most connection
attempts of a burst and each drop costs the client a 1 s retransmit (see README.md).
"""

import signal
import socket
import socketserver
import sys
import threading
import time

import common

NAME = "python-threaded"


class State:
    """What every handler thread shares: the options, the counters, the in-flight count."""

    recipe = common.parse_recipe("100ms")
    kind = "wait"
    framing = common.Framing("line")
    counters = common.Counters()
    in_flight = 0
    idle = threading.Condition()


def track(step):
    """Adds `step` to the requests in flight and wakes a shutdown waiting for zero."""
    with State.idle:
        State.in_flight += step
        State.idle.notify_all()


class Handler(socketserver.StreamRequestHandler):
    """Serves one connection, line after line, until the client closes its side (or, with
    raw framing, one message, after which socketserver closes it, as in the article)."""

    def handle(self):
        State.counters.add(connections=1)
        # asyncio and our Rust servers set TCP_NODELAY; socketserver does not (README.md).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if State.framing.raw:
                self.serve_raw()
            else:
                while self.serve_one():
                    pass
        except OSError:
            State.counters.add(errors=1)

    def serve_raw(self):
        """The article's handler: what one recv delivers is the message."""
        data = self.connection.recv(common.MAX_LINE_BYTES + 1)
        if len(data) > common.MAX_LINE_BYTES:
            self.refuse_too_long()
        elif data:
            self.respond(data)

    def serve_one(self):
        """Answers one line; returns False when the connection is done."""
        line = self.rfile.readline(common.MAX_LINE_BYTES + 1)
        if not line:
            return False
        if len(line) > common.MAX_LINE_BYTES and not line.endswith(b"\n"):
            self.refuse_too_long()
            return False
        self.respond(line.rstrip(b"\n"))
        return line.endswith(b"\n")

    def refuse_too_long(self):
        self.wfile.write(State.framing.too_long())
        State.counters.add(errors=1)

    def respond(self, request):
        """Writes the reply after the recipe's phases spent in this thread (time.sleep for
        wait and block alike, a busy loop for spin), or the error at once when it is not
        UTF-8."""
        message = common.decode(request)
        if message is None:
            self.wfile.write(State.framing.invalid_utf8())
            State.counters.add(errors=1)
            return
        track(+1)
        try:
            for kind, seconds in State.recipe.draw(State.kind):
                common.hold_thread(kind, seconds)
            self.wfile.write(State.framing.reply(message.upper()))
            State.counters.add(requests=1)
        finally:
            track(-1)


class Server(socketserver.ThreadingTCPServer):
    """ThreadingTCPServer with the article's defaults, except where options change them."""

    allow_reuse_address = True
    daemon_threads = True


def wait_for_signal():
    """Blocks until SIGTERM or SIGINT, with no polling (they are blocked in every thread)."""
    return signal.sigwait({signal.SIGTERM, signal.SIGINT})


def drain(timeout):
    """Waits, at most `timeout` seconds, for requests already received to be answered."""
    deadline = time.monotonic() + timeout
    with State.idle:
        while State.in_flight > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not State.idle.wait(left):
                break


def main():
    args = common.parser(__doc__.splitlines()[1], default_backlog=5).parse_args()
    common.raise_nofile_limit()
    common.tune_the_allocator()
    State.recipe = args.delay
    State.kind = args.delay_kind
    State.framing = args.framing
    # Blocked before any thread starts, so every thread inherits the mask and only
    # sigwait below receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    Server.request_queue_size = args.backlog
    server = Server((args.host, args.port), Handler)
    common.announce(server.server_address)
    serving = threading.Thread(target=server.serve_forever, name="acceptor")
    serving.start()
    wait_for_signal()
    server.shutdown()
    server.server_close()
    drain(args.shutdown_timeout)
    State.counters.summary(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
