"""Tests of the article baselines, runnable without cargo:
`python3 -m unittest discover -s baselines` (from the repository root).

Every server script is started as a process on port 0 and checked over loopback with one body
of cases (split writes, UTF-8 cut between reads, order, errors, delay kinds, request recipes,
raw framing, resets, SIGTERM drain), the cases of the conformance suite that apply to a baseline,
and again with `--offload` on the asyncio rows, with the offload cases (a blocked request does not
hold up another connection's immediate reply, SIGTERM with offloaded work in flight); the
uvloop row runs them where uvloop is importable, and its skip (exit 3, the reason on stderr)
is checked everywhere. The event-loop connection is also driven in-process with a fake
transport, where the cases that depend on what happens when are exact. No case asserts a
duration beyond "not before the delay".
"""

import asyncio
import importlib.util
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import asyncio_server  # noqa: E402
import asyncio_timer_server  # noqa: E402
import common  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
DELAY_S = 0.05
GENEROUS_S = 30.0
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


class Process:
    """One baseline server process, on a free port, stopped by its PID."""

    def __init__(self, script, *flags, env=None):
        args = [sys.executable, str(HERE / script), "--port", "0",
                "--delay", f"{int(DELAY_S * 1000)}ms", "--backlog", "64", *flags]
        environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {}))
        self.child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=environment)
        self.first_line = self.child.stdout.readline().decode()
        self.port = None
        self.conns = []
        if self.first_line.startswith("listening on 127.0.0.1:"):
            self.port = int(self.first_line.rsplit(":", 1)[1])

    def connect(self):
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=GENEROUS_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns.append(conn)
        return conn

    def stop(self, terminate=True):
        """SIGTERM (unless the case sent it), then the exit status and the last line of
        stderr (the summary)."""
        if terminate:
            self.child.send_signal(signal.SIGTERM)
        _, err = self.child.communicate(timeout=GENEROUS_S)
        lines = err.decode().strip().splitlines()
        return self.child.returncode, lines[-1] if lines else ""

    def kill(self):
        """Closes the test's sockets and ends a process a failed case left running."""
        for conn in self.conns:
            conn.close()
        if self.child.poll() is None:
            self.child.kill()
        self.child.communicate()


def read_until_closed(conn):
    replies = b""
    while chunk := conn.recv(65536):
        replies += chunk
    return replies


def minor_faults(pid):
    """The process's minor page faults so far (/proc/PID/stat's tenth field)."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[7])


def read_line(conn):
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        line += chunk
    return line


class ServerCases:
    """The cases every baseline passes; a subclass names the script."""

    script = None
    # Flags that select the variant, before every case's own (e.g. --offload 4).
    flags = ()

    def setUp(self):
        self.server = Process(self.script, *self.flags)
        self.addCleanup(self.server.kill)
        self.assertIsNotNone(self.server.port, f"{self.script}: {self.server.first_line!r}")

    def test_lines_split_across_reads_are_answered_in_order_and_not_before_the_delays(self):
        conn = self.server.connect()
        sent = time.monotonic()
        data = "hello\nstraße wörld\nlast".encode()
        cut = data.index("ß".encode()) + 1  # inside the two bytes of ß
        conn.sendall(data[:cut])
        conn.sendall(data[cut:])
        conn.shutdown(socket.SHUT_WR)
        replies = read_until_closed(conn)
        self.assertEqual(replies.decode(), "HELLO\nSTRASSE WÖRLD\nLAST\n")
        self.assertGreaterEqual(time.monotonic() - sent, 3 * DELAY_S, "one wait at a time")
        self.assert_exits_cleanly(self.server, "connections=1 requests=3 errors=0")

    def test_invalid_utf8_is_answered_at_once_and_the_connection_goes_on(self):
        conn = self.server.connect()
        conn.sendall(b"\xff\xfe\nok\n")
        conn.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(conn), b"ERR invalid utf-8\nOK\n")

    def test_a_line_over_the_limit_is_refused_and_the_connection_closed(self):
        conn = self.server.connect()
        conn.sendall(b"x" * (common.MAX_LINE_BYTES + 1))
        self.assertEqual(read_until_closed(conn), b"ERR line too long (limit 65536 bytes)\n")

    def test_many_connections_at_once_each_get_their_own_reply(self):
        conns = [self.server.connect() for _ in range(50)]
        for i, conn in enumerate(conns):
            conn.sendall(f"client {i}\n".encode())
            conn.shutdown(socket.SHUT_WR)
        for i, conn in enumerate(conns):
            self.assertEqual(read_until_closed(conn), f"CLIENT {i}\n".encode())
        self.assert_exits_cleanly(self.server, "connections=50 requests=50 errors=0")

    def test_a_request_takes_no_memory_mapping_of_its_own(self):
        # asyncio's 256 KiB read buffer is an mmap, mremap and munmap per request, two page
        # faults, unless the allocator's thresholds are fixed (common.tune_the_allocator).
        # The second round of connections finds the heap grown by the first.
        conns = [self.server.connect() for _ in range(400)]
        rounds = []
        for first in (0, 200):
            faults = minor_faults(self.server.child.pid)
            for i in range(first, first + 200):
                conns[i].sendall(f"client {i}\n".encode())
            for i in range(first, first + 200):
                self.assertEqual(read_line(conns[i]), f"CLIENT {i}\n".encode())
            rounds.append(minor_faults(self.server.child.pid) - faults)
        self.assertLess(rounds[1], 100, f"page faults of the server per round of 200 "
                                        f"requests: {rounds}")

    def test_sigterm_answers_what_was_received_then_exits_cleanly(self):
        conn = self.server.connect()
        conn.sendall(b"a\nb\n")  # one segment: when A is answered, b has been read too
        self.assertEqual(read_line(conn), b"A\n")
        self.server.child.send_signal(signal.SIGTERM)
        self.assertEqual(read_line(conn), b"B\n")
        self.assert_exits_cleanly(self.server, "connections=1 requests=2 errors=0", terminate=False)

    def test_a_client_that_resets_takes_only_its_own_connection(self):
        lost = self.server.connect()
        lost.sendall(b"never answered\n")
        lost.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        lost.close()  # a reset, before the reply
        conn = self.server.connect()
        conn.sendall(b"still served\n")
        conn.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(conn), b"STILL SERVED\n")
        code, summary = self.server.stop()
        self.assertEqual(code, 0, summary)

    def test_block_and_spin_delays_are_also_answered_never_before_the_delay(self):
        for kind in ("block", "spin"):
            server = Process(self.script, *self.flags, "--delay-kind", kind)
            self.addCleanup(server.kill)
            conn = server.connect()
            sent = time.monotonic()
            conn.sendall(f"{kind} me\n".encode())
            self.assertEqual(read_line(conn), f"{kind.upper()} ME\n".encode())
            self.assertGreaterEqual(time.monotonic() - sent, DELAY_S, kind)
            self.assertEqual(server.stop()[0], 0, kind)

    def test_a_recipe_is_answered_after_at_least_the_sum_of_its_phases(self):
        for spec in ("spin:20ms+wait:30ms", "wait:20ms+block:30ms"):
            server = Process(self.script, "--delay", spec)
            self.addCleanup(server.kill)
            conn = server.connect()
            sent = time.monotonic()
            conn.sendall(b"first\nsecond\n")
            self.assertEqual(read_line(conn), b"FIRST\n", spec)
            self.assertGreaterEqual(time.monotonic() - sent, 0.05, spec)
            self.assertEqual(read_line(conn), b"SECOND\n", spec)
            self.assertGreaterEqual(time.monotonic() - sent, 0.1, f"{spec}: twice the recipe")
            conn.close()
            self.assertEqual(server.stop()[0], 0, spec)

    def test_raw_framing_answers_one_chunk_upper_cased_and_closes_like_the_articles_server(self):
        server = Process(self.script, *self.flags, "--framing", "raw")
        self.addCleanup(server.kill)
        for message, reply in [(b"hello, world", b"HELLO, WORLD"),
                               ("straße\n".encode(), b"STRASSE\n"),
                               (b"\xff", b"ERR invalid utf-8")]:
            conn = server.connect()
            conn.sendall(message)  # no half-close: the server closes after its reply
            self.assertEqual(read_until_closed(conn), reply, message)
        self.assert_exits_cleanly(server, "connections=3 requests=2 errors=1")

    def test_a_bad_flag_value_is_refused_at_start_naming_it(self):
        for flag, value in [("--framing", "lines"), ("--delay", "10parsecs"),
                            ("--delay", "spin:2ms+wait:2xs")]:
            server = Process(self.script, *self.flags, flag, value)
            code, reason = server.stop(terminate=False)
            self.assertEqual(code, 2, reason)
            self.assertIn(repr(value), reason)
        self.assertIn("phase 2 'wait:2xs'", reason)

    def assert_exits_cleanly(self, server, counts, terminate=True):
        """Exit status 0 and the summary line with these counts, after SIGTERM."""
        summary = f"{self.server_name}: {counts}"
        self.assertEqual(server.stop(terminate), (0, summary))


class OffloadCases:
    """The cases of an event-loop baseline with --offload, as the Rust offload variants'
    (crates/conformance/src/offload.rs); a subclass names the script and the flags."""

    def test_a_blocked_request_does_not_hold_up_another_connections_immediate_reply(self):
        server = Process(self.script, *self.flags, "--delay-kind", "block", "--delay", "200ms")
        self.addCleanup(server.kill)
        first = server.connect()
        first.sendall(b"one\ntwo\n")
        self.assertEqual(read_line(first), b"ONE\n")  # TWO's blocked delay has begun
        second = server.connect()
        second.sendall(b"\xff\n")  # answered at once, with no delay
        self.assertEqual(read_line(second), b"ERR invalid utf-8\n")
        # An order, not a speed: a loop that blocks reads the second connection only once the
        # delay is over and TWO is written.
        first.setblocking(False)
        try:
            early = first.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            early = b""
        first.setblocking(True)
        self.assertEqual(early, b"", "the blocked delay held the loop")
        self.assertEqual(read_line(first), b"TWO\n")
        self.assertEqual(server.stop()[0], 0)

    def test_sigterm_answers_the_offloaded_requests_in_flight_and_exits_cleanly(self):
        server = Process(self.script, *self.flags, "--delay-kind", "block")
        self.addCleanup(server.kill)
        conn = server.connect()
        conn.sendall(b"one\ntwo\nthree\n")
        self.assertEqual(read_line(conn), b"ONE\n")  # TWO's delay now runs on the pool
        server.child.send_signal(signal.SIGTERM)
        self.assertEqual(read_line(conn), b"TWO\n")
        self.assertEqual(read_line(conn), b"THREE\n")
        self.assertEqual(server.stop(terminate=False),
                         (0, f"{self.server_name}: connections=1 requests=3 errors=0"))

    def test_an_offload_pool_over_the_cap_or_not_a_number_is_refused_naming_it(self):
        for value in ("5000", "lots"):
            server = Process(self.script, "--offload", value)
            code, reason = server.stop(terminate=False)
            self.assertEqual(code, 2, reason)
            self.assertIn(value, reason)


class ThreadedServer(ServerCases, unittest.TestCase):
    script = "threaded_server.py"
    server_name = "python-threaded"


class ArticleAsyncioServer(ServerCases, unittest.TestCase):
    script = "asyncio_server.py"
    server_name = "python-asyncio"


class TimerAsyncioServer(ServerCases, unittest.TestCase):
    script = "asyncio_timer_server.py"
    server_name = "python-asyncio-timer"


class ArticleAsyncioOffloadServer(ServerCases, OffloadCases, unittest.TestCase):
    """The python-asyncio-offload row: the article's server with --offload."""
    script = "asyncio_server.py"
    server_name = "python-asyncio"
    flags = ("--offload", "4")


class TimerAsyncioOffloadServer(ServerCases, OffloadCases, unittest.TestCase):
    script = "asyncio_timer_server.py"
    server_name = "python-asyncio-timer"
    flags = ("--offload", "4")


if HAS_UVLOOP:
    class UvloopServer(ServerCases, unittest.TestCase):
        script = "uvloop_server.py"
        server_name = "python-uvloop"


class UvloopAbsence(unittest.TestCase):
    """Without uvloop the row must say why it is skipped, with a status of its own."""

    def test_without_uvloop_the_server_exits_3_naming_the_cause_and_the_fix(self):
        with tempfile.TemporaryDirectory() as hidden:
            # A uvloop that cannot be imported stands in for one that is not installed.
            stand_in = pathlib.Path(hidden, "uvloop.py")
            stand_in.write_text("raise ImportError('hidden by the test')\n")
            server = Process("uvloop_server.py", env={"PYTHONPATH": hidden})
            code, reason = server.stop(terminate=False)
        self.assertEqual(server.first_line, "")
        self.assertEqual((code, reason),
                         (3, "skipped: uvloop is not importable (pip install uvloop)"))


class RecipeGrammar(unittest.TestCase):
    """--delay reads echo-core's grammar: PHASE(+PHASE)*, each [KIND:]DURATION."""

    def test_the_issues_examples_read_as_their_phases(self):
        cases = {
            "spin:2ms+wait:100ms": [("spin", ("fixed", 0.002)), ("wait", ("fixed", 0.1))],
            "block:100ms": [("block", ("fixed", 0.1))],
            "wait:uniform:50ms..150ms": [("wait", ("uniform", 0.05, 0.15))],
            "spin:fixed:1ms + exp:20ms": [("spin", ("fixed", 0.001)), (None, ("exp", 0.02))],
        }
        for spec, phases in cases.items():
            read = common.parse_recipe(spec)
            self.assertEqual([(p.kind, p.distribution) for p in read.phases], phases, spec)

    def test_todays_specs_are_one_phase_that_takes_the_delay_kind(self):
        for spec, seconds in [("100", 0.1), ("100ms", 0.1), ("1s500ms", 1.5), ("0", 0.0)]:
            read = common.parse_recipe(spec)
            self.assertEqual([(p.kind, p.distribution) for p in read.phases],
                             [(None, ("fixed", seconds))], spec)
        self.assertEqual(common.parse_recipe("100ms").draw("block"), [("block", 0.1)])

    def test_kinds_the_spec_names_win_over_the_delay_kind_and_zero_phases_are_left_out(self):
        self.assertEqual(common.parse_recipe("spin:1ms+2ms+wait:0").draw("block"),
                         [("spin", 0.001), ("block", 0.002)])

    def test_drawn_phases_stay_within_their_distributions(self):
        read = common.parse_recipe("wait:uniform:10ms..20ms+exp:5ms")
        for _ in range(200):
            (_, uniform), *rest = read.draw("wait")
            self.assertTrue(0.01 <= uniform <= 0.02, uniform)
            self.assertTrue(all(seconds > 0 for _, seconds in rest), rest)

    def test_a_bad_phase_is_refused_naming_the_spec_and_the_phase(self):
        cases = [
            ("spin:2ms+wait:2xs", "phase 2 'wait:2xs': invalid duration '2xs'"),
            ("spin:2ms+", "phase 2 '': it is empty"),
            ("sleep:2ms+1ms", "phase 1 'sleep:2ms': unknown kind or distribution 'sleep'"),
            ("1ms+wait:uniform:3ms..1ms", "phase 2 'wait:uniform:3ms..1ms': lower bound"),
            ("spin:1ms+wait:25h", "phase 2 'wait:25h': 25h is above the longest delay, 1day"),
            ("wait:13h+spin:uniform:1h..12h", "more than the longest delay, 1day"),
        ]
        for spec, expected in cases:
            with self.assertRaises(common.argparse.ArgumentTypeError, msg=spec) as caught:
                common.parse_recipe(spec)
            self.assertIn(repr(spec), str(caught.exception))
            self.assertIn(expected, str(caught.exception))


class FakeTransport:
    """Records what a connection writes and whether it closed, like asyncio's transport."""

    def __init__(self):
        self.written = b""
        self.closed = False
        self.done = asyncio.get_running_loop().create_future()

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True
        self.done.set_result(None)

    def is_closing(self):
        return self.closed


class InProcess:
    """The event-loop connection driven on a real loop with a fake transport."""

    connection = None
    recipe = common.parse_recipe(f"{int(DELAY_S * 1000)}ms")

    def drive(self, steps, recipe=None):
        async def body():
            shared = common.LoopShared(recipe or self.recipe)
            conn = self.connection(shared)
            conn.connection_made(FakeTransport())
            await steps(conn, shared)
            return conn, shared
        return asyncio.run(body())

    def test_the_next_wait_starts_only_when_the_previous_reply_is_written(self):
        async def steps(conn, shared):
            conn.data_received(b"one\ntwo\n")
            self.assertEqual((shared.waits, len(conn.queue)), (1, 1))
            conn.eof_received()
            await asyncio.wait_for(conn.transport.done, GENEROUS_S)
        conn, shared = self.drive(steps)
        self.assertEqual(conn.transport.written, b"ONE\nTWO\n")
        self.assertEqual((shared.waits, shared.counters.requests), (0, 2))

    def test_a_connection_lost_during_its_wait_writes_nothing_and_ends_the_wait_once(self):
        async def steps(conn, shared):
            conn.data_received(b"gone\n")
            wait = conn.wait
            conn.connection_lost(ConnectionResetError())
            if isinstance(wait, asyncio.Task):
                await asyncio.wait({wait})  # its done callback has run by now
            self.assertTrue(wait.cancelled())
        conn, shared = self.drive(steps)
        self.assertEqual(conn.transport.written, b"")
        self.assertEqual((shared.waits, shared.counters.errors), (0, 1))

    def test_a_recipes_phases_run_in_order_before_the_reply_one_request_at_a_time(self):
        recipe = common.parse_recipe("wait:10ms+spin:5ms+wait:10ms")

        async def steps(conn, shared):
            sent = time.monotonic()
            conn.data_received(b"one\ntwo\n")
            conn.eof_received()
            await asyncio.wait_for(conn.transport.done, GENEROUS_S)
            self.assertGreaterEqual(time.monotonic() - sent, 2 * 0.025, "two whole recipes")
        conn, shared = self.drive(steps, recipe)
        self.assertEqual(conn.transport.written, b"ONE\nTWO\n")
        self.assertEqual((shared.waits, shared.counters.requests), (0, 2))

    def test_a_drain_returns_when_the_last_wait_is_answered(self):
        async def steps(conn, shared):
            conn.data_received(b"late\n")
            await shared.drain(GENEROUS_S)
            self.assertEqual(conn.transport.written, b"LATE\n")
        self.drive(steps)


class ArticleInProcess(InProcess, unittest.TestCase):
    connection = asyncio_server.EchoServerProtocol

    def test_each_request_is_a_task_running_the_articles_coroutine(self):
        async def steps(conn, shared):
            conn.data_received(b"db\n")
            self.assertIsInstance(conn.wait, asyncio.Task)
            self.assertEqual(conn.wait.get_coro().__name__, "simulate_network_io")
            await conn.wait
        conn, _ = self.drive(steps)
        self.assertEqual(conn.transport.written, b"DB\n")

    def test_a_task_finished_before_its_connection_was_lost_writes_nothing(self):
        async def steps(conn, shared):
            conn.data_received(b"raced\n")
            conn.connection_lost(None)
            # As if its sleep had ended just before the loss: a finished task whose done
            # callback runs after the connection was lost.
            finished = asyncio.get_running_loop().create_future()
            finished.set_result("RACED")
            conn.handle_network_io_result(finished)
        conn, shared = self.drive(steps)
        self.assertEqual(conn.transport.written, b"")
        self.assertEqual((shared.waits, shared.counters.requests), (0, 0))


class TimerInProcess(InProcess, unittest.TestCase):
    connection = asyncio_timer_server.TimerEcho

    def test_each_request_is_one_loop_timer(self):
        async def steps(conn, shared):
            conn.data_received(b"db\n")
            self.assertIsInstance(conn.wait, asyncio.TimerHandle)
            conn.wait.cancel()
        self.drive(steps)

    def test_each_wait_phase_is_one_loop_timer_and_the_last_one_writes_the_reply(self):
        async def steps(conn, shared):
            # Told when the first phase's timer has run the phases after it.
            second_phase = asyncio.get_running_loop().create_future()
            calls = []
            run_phases = conn.run_phases

            def spy(reply, phases):
                run_phases(reply, phases)
                calls.append(conn.wait)
                if len(calls) == 2:
                    second_phase.set_result(conn.wait)
            conn.run_phases = spy
            conn.data_received(b"db\n")
            self.assertIsInstance(conn.wait, asyncio.TimerHandle)
            second = await asyncio.wait_for(second_phase, GENEROUS_S)
            self.assertIsInstance(second, asyncio.TimerHandle)
            self.assertIsNot(second, calls[0])
            self.assertEqual(conn.transport.written, b"", "no reply before the last phase")
            conn.eof_received()
            await asyncio.wait_for(conn.transport.done, GENEROUS_S)
        conn, _ = self.drive(steps, common.parse_recipe("wait:10ms+wait:10ms"))
        self.assertEqual(conn.transport.written, b"DB\n")


if __name__ == "__main__":
    unittest.main()
