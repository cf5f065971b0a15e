#!/usr/bin/env python3
"""The cheaper asyncio server: one loop timer per request instead of the article's task.

Not the article's code path (that is asyncio_server.py): the same asyncio.Protocol
connection, but each request's simulated IO wait is a single `loop.call_later(delay, ...)`
handle whose callback writes the reply, with no task, coroutine or future. Set beside
"python-asyncio", the "python-asyncio-timer" row shows what the article's style of waiting
costs. Requests on one connection are answered in order, one wait at a time.

Run it as `python3 baselines/asyncio_timer_server.py --port 0 --delay 100 --backlog 4096`; it
prints `listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.
With `--delay-kind block` or `spin` the loop's thread is held before the reply is scheduled,
unless `--offload N` moves that call to a ThreadPoolExecutor of N threads
(`loop.run_in_executor`). Its default backlog is asyncio.create_server's 100, the article's.
"""

import asyncio
import sys

import common

NAME = "python-asyncio-timer"


class TimerEcho(common.LoopConnection):
    """One connection; the wait is one loop timer whose callback writes the reply."""

    def begin(self, message):
        reply = self.reply(message.upper())
        loop = asyncio.get_running_loop()
        if self.shared.offloads():
            # --offload N: the blocking call on the pool; its future's callback writes.
            self.wait = self.shared.hold_in_pool()
            self.wait.add_done_callback(lambda done: self.offloaded(done, reply))
        elif self.shared.holds_thread():
            # --delay-kind block or spin: the loop's thread is held, then the reply goes out
            # on the next turn of the loop (never from inside advance, which would recurse).
            common.hold_thread(self.shared.kind, self.shared.delay)
            self.wait = loop.call_soon(self.answer, reply)
        else:
            self.wait = loop.call_later(self.shared.delay, self.answer, reply)


    def offloaded(self, done, reply):
        # A call the connection no longer waits on (it was lost meanwhile) writes nothing.
        if done is self.wait and not done.cancelled():
            self.answer(reply)


def main():
    return common.run_loop_server(__doc__.splitlines()[1], TimerEcho, NAME)


if __name__ == "__main__":
    sys.exit(main())
