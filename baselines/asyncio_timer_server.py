#!/usr/bin/env python3
"""The cheaper asyncio server: one loop timer per request instead of the article's task.

Not the article's code path (that is asyncio_server.py): the same asyncio.Protocol
connection, but each request's simulated IO wait is a single `loop.call_later(delay, ...)`
handle whose callback writes the reply, with no task, coroutine or future. Set beside
"python-asyncio", the "python-asyncio-timer" row shows what the article's style of waiting
costs. Requests on one connection are answered in order, one wait at a time. A recipe's
phases run in order: a `wait` phase is one timer (the last one's callback writes the reply),
a `block` or `spin` phase holds the loop's thread.

Run it as `python3 baselines/asyncio_timer_server.py --port 0 --delay 100 --backlog 4096`; it
prints `listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.
A `block` or `spin` phase holds the loop's thread, unless `--offload N` moves that call to a
ThreadPoolExecutor of N threads (`loop.run_in_executor`). Its default backlog is asyncio.create_server's 100, the article's.
"""

import asyncio
import sys

import common

NAME = "python-asyncio-timer"


class TimerEcho(common.LoopConnection):
    """One connection; the wait is one loop timer whose callback writes the reply."""

    def begin(self, message):
        self.run_phases(self.reply(message.upper()), self.shared.phases())

    def run_phases(self, reply, phases):
        """Spends `phases` in order from here: block and spin phases on the loop's thread, up
        to the next wait phase, which is one timer calling back here with the rest, or
        straight to the reply when it is the last."""
        loop = asyncio.get_running_loop()
        for i, (kind, seconds) in enumerate(phases):
            rest = phases[i + 1:]
            if kind != "wait" and self.shared.offloads():
                # --offload N: the blocking call on the pool; its future's callback goes on.
                self.wait = self.shared.hold_in_pool(kind, seconds)
                self.wait.add_done_callback(lambda done: self.offloaded(done, reply, rest))
                return
            if kind != "wait":
                common.hold_thread(kind, seconds)
                continue
            if rest:
                self.wait = loop.call_later(seconds, self.run_phases, reply, rest)
            else:
                self.wait = loop.call_later(seconds, self.answer, reply)
            return
        # Only block and spin phases were left: the reply goes out on the next turn of the
        # loop (never from inside advance, which would recurse).
        self.wait = loop.call_soon(self.answer, reply)


    def offloaded(self, done, reply, rest):
        # A call the connection no longer waits on (it was lost meanwhile) writes nothing.
        if done is self.wait and not done.cancelled():
            self.run_phases(reply, rest)


def main():
    return common.run_loop_server(__doc__.splitlines()[1], TimerEcho, NAME)


if __name__ == "__main__":
    sys.exit(main())
