#!/usr/bin/env python3
"""The article's asyncio server, on the article's own code path, speaking our line protocol.

One event loop; each connection is an asyncio.Protocol, and each request's simulated IO wait
is spent exactly as the article spends it: `data_received` hands the message to
`loop.create_task(self.simulate_network_io(message))`, a coroutine that awaits
`asyncio.sleep(delay)` and returns `message.upper()` (the article writes it
`return await asyncio.sleep(delay, result=message.upper())`), and the reply is written by the
task's `add_done_callback`. So every request costs a task, a coroutine, a future and a callback,
which is what the "python-asyncio" row measures. (asyncio_timer_server.py is the cheaper
variant: one loop timer per request.) Requests on one connection are answered in order: the
next request's task is created when the previous reply has been written.

Run it as `python3 baselines/asyncio_server.py --port 0 --delay 100 --backlog 4096`; it prints
`listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.
With `--framing raw` it is the article's protocol too: one message per connection, closed
after its reply. A recipe's phases run in order inside that one coroutine: a `wait` phase
is awaited (`asyncio.sleep`), a `block` or `spin` phase holds the loop's thread (time.sleep or
a busy loop), the classic mistake; add `--offload N` and such a phase is awaited through
`loop.run_in_executor` on a ThreadPoolExecutor of N threads instead (the
python-asyncio-offload row), the usual fix. Its default backlog is asyncio.create_server's
100, the article's.
"""

import asyncio
import sys

import common

NAME = "python-asyncio"


class EchoServerProtocol(common.LoopConnection):
    """One connection; the wait is the article's task, coroutine, sleep and done callback."""

    def begin(self, message):
        task = asyncio.get_running_loop().create_task(self.simulate_network_io(message))
        task.add_done_callback(self.handle_network_io_result)
        self.wait = task

    async def simulate_network_io(self, message):
        for kind, seconds in self.shared.phases():
            if kind == "wait":
                # DB request, as in the article.
                await asyncio.sleep(seconds)
            elif self.shared.offloads():
                # --offload N: the fix, the blocking call awaited on a thread pool.
                await self.shared.hold_in_pool(kind, seconds)
            else:
                # block or spin: the classic mistake, a blocking call in a coroutine.
                common.hold_thread(kind, seconds)
        return message.upper()

    def handle_network_io_result(self, task):
        # A task the connection no longer waits on (it was lost meanwhile), or one cancelled
        # when the loop shuts down, has no reply to write.
        if task is not self.wait or task.cancelled():
            return
        self.answer(self.reply(task.result()))


def main(name=NAME, run=asyncio.run):
    """Serves until SIGTERM; `name` and `run` let uvloop_server.py reuse it on uvloop."""
    description = __doc__.splitlines()[1]
    return common.run_loop_server(description, EchoServerProtocol, name, run)


if __name__ == "__main__":
    sys.exit(main())
