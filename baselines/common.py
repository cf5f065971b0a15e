"""Shared pieces of the article baselines: options, framing and the reply rule, spending a
delay on a thread, counters, and the one event-loop connection that the asyncio servers
differ from only in how they spend a wait.

Standard library only, so that `cargo xtask compare` can run these rows on any machine that
has a `python3`. Every server speaks the project's protocol (see docs/PROTOCOL.md): with the
default line framing a request is a line ending in "\\n", the reply is that line upper-cased
plus "\\n", a connection carries many requests and closes when the client closes its side;
with `--framing raw`, the article's, the first chunk read is the message, its reply has
nothing added, and the server closes after it.
"""

import argparse
import asyncio
import collections
import concurrent.futures
import ctypes
import ctypes.util
import random
import re
import resource
import signal
import sys
import threading
import time

# The article's limit on one message; here the limit on one line, like echo-core's
# max_line_bytes default (64 KiB).
MAX_LINE_BYTES = 64 * 1024

_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "secs": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
    "hours": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0,
}

DELAY_KINDS = ("wait", "block", "spin")

# The longest delay a phase, and a whole recipe, may name: a day, as echo-core's.
MAX_DELAY_S = 86400.0
# The largest --offload pool, as the Rust servers' (server-common's MAX_OFFLOAD_THREADS).
MAX_OFFLOAD_THREADS = 1024


def parse_delay(text):
    """Reads a duration as the Rust servers write it ("100ms", "1s500ms", "1day", "0") or as
    bare milliseconds.

    Returns seconds as a float. Raises argparse.ArgumentTypeError naming the text when it is
    not a duration, so a typo fails at start instead of silently running at zero delay.
    """
    stripped = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        return float(stripped) * 1e-3
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-zµ]+)", stripped)
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?\s*[a-zµ]+\s*)+", stripped) \
            or any(unit not in _UNITS for _, unit in parts):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: want e.g. 100, 100ms, 1s500ms or 1day")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


class Phase:
    """One phase of a request recipe: its kind (None when the spec names none, which then
    takes --delay-kind) and its distribution, ("fixed", s), ("uniform", lo, hi) or
    ("exp", mean), in seconds."""

    def __init__(self, kind, distribution):
        self.kind = kind
        self.distribution = distribution

    def longest_named(self):
        """The fixed length, the uniform's upper bound or the exponential's mean: what the
        day's bound on a recipe counts."""
        name, *seconds = self.distribution
        return seconds[1] if name == "uniform" else seconds[0]

    def draw(self, rng):
        """One length in seconds."""
        name, *seconds = self.distribution
        if name == "fixed":
            return seconds[0]
        if name == "uniform":
            return rng.uniform(seconds[0], seconds[1])
        return rng.expovariate(1.0 / seconds[0]) if seconds[0] > 0 else 0.0


def _parse_model(text):
    """One distribution as echo-core reads it: `100ms`, `fixed:1s`, `uniform:50ms..150ms`,
    `exp:100ms`. Raises ValueError with the reason."""
    text = text.strip()
    if not text:
        raise ValueError("it is empty")
    name, colon, rest = text.partition(":")
    if not colon:
        name, rest = "fixed", text

    def duration(part):
        try:
            seconds = parse_delay(part)
        except argparse.ArgumentTypeError as e:
            raise ValueError(str(e)) from None
        if seconds > MAX_DELAY_S:
            raise ValueError(f"{part.strip()} is above the longest delay, 1day")
        return seconds

    if name == "fixed":
        return ("fixed", duration(rest))
    if name == "uniform":
        lo, dots, hi = rest.partition("..")
        if not dots:
            raise ValueError("uniform needs two bounds, `MIN..MAX`")
        lo, hi = duration(lo), duration(hi)
        if lo > hi:
            raise ValueError(f"lower bound {lo}s is above upper bound {hi}s")
        return ("uniform", lo, hi)
    if name == "exp":
        return ("exp", duration(rest))
    raise ValueError(f"unknown kind or distribution {name!r} (kinds: wait, block, spin; "
                     "distributions: fixed, uniform, exp)")


def _parse_phase(text):
    head, colon, rest = text.strip().partition(":")
    if colon and head.strip() in DELAY_KINDS:
        return Phase(head.strip(), _parse_model(rest))
    return Phase(None, _parse_model(text))


class Recipe:
    """A request's simulated work as phases run in order, the reply after the last: the
    grammar of echo-core's `Recipe`, `PHASE(+PHASE)*`, each `[KIND:]DURATION`
    (`spin:2ms+wait:100ms`, `block:100ms`, `wait:uniform:50ms..150ms`; `100ms` is one phase
    without a kind). A kind the spec names wins over --delay-kind, which gives the kind of the
    phases that name none.

    Uniform and exponential phases are drawn from Python's generator (seeded 0), not from the
    Rust servers' sequence: the same distribution, other draws.
    """

    def __init__(self, spec, phases):
        self.spec = spec
        self.phases = phases
        self.rng = random.Random(0)

    def draw(self, default_kind):
        """The phases of one request, drawn now: (kind, seconds) pairs, zero-length phases
        left out, as echo-core skips them."""
        drawn = [(phase.kind or default_kind, phase.draw(self.rng)) for phase in self.phases]
        return [(kind, seconds) for kind, seconds in drawn if seconds > 0]


def parse_recipe(text):
    """argparse's type for --delay: a Recipe, or ArgumentTypeError naming the spec and, in a
    recipe of several phases, the faulty phase (`phase 2 'wait:2xs': ...`)."""
    parts = text.split("+")
    phases = []
    for i, part in enumerate(parts, 1):
        try:
            phases.append(_parse_phase(part))
        except ValueError as e:
            where = f"phase {i} {part!r}: " if len(parts) > 1 else ""
            raise argparse.ArgumentTypeError(
                f"invalid delay spec {text!r}: {where}{e} "
                "(expected e.g. 100ms, uniform:50ms..150ms, exp:100ms or spin:2ms+wait:100ms)"
            ) from None
    if sum(phase.longest_named() for phase in phases) > MAX_DELAY_S:
        raise argparse.ArgumentTypeError(
            f"invalid delay spec {text!r}: its phases name more than the longest delay, 1day")
    return Recipe(text, phases)


def parse_offload(text):
    """Reads --offload: a thread count from 0 (off) to MAX_OFFLOAD_THREADS.

    Raises argparse.ArgumentTypeError naming the text otherwise, as the Rust servers refuse it.
    """
    try:
        threads = int(text)
    except ValueError:
        threads = -1
    if threads < 0:
        raise argparse.ArgumentTypeError(
            f"invalid offload pool size {text!r} (expected 0 to {MAX_OFFLOAD_THREADS} threads)")
    if threads > MAX_OFFLOAD_THREADS:
        raise argparse.ArgumentTypeError(
            f"offload pool of {threads} threads is over the cap of {MAX_OFFLOAD_THREADS}")
    return threads


class Framing:
    """How requests are cut and replies ended: "line" (ours) or "raw" (the article's).

    Raw is what the article's servers do: one read is the message, the reply is it
    upper-cased with nothing added (errors too), and the server closes after it.
    """

    def __init__(self, name):
        self.name = name
        self.raw = name == "raw"
        self.end = b"" if self.raw else b"\n"

    @classmethod
    def named(cls, text):
        """The framing called `text`; argparse's type, so a typo names itself at start."""
        if text not in ("line", "raw"):
            raise argparse.ArgumentTypeError(f"invalid framing {text!r}: want line or raw")
        return cls(text)

    def reply(self, upper):
        """The bytes on the wire for an already upper-cased message."""
        return upper.encode("utf-8") + self.end

    def error(self, text):
        """An error reply: `ERR ` and lower-case text, ended like every reply."""
        return f"ERR {text}".encode() + self.end

    def invalid_utf8(self):
        """echo-core answers invalid UTF-8 at once, without the simulated wait (it never
        reaches the "database"); the baselines do the same."""
        return self.error("invalid utf-8")

    def too_long(self):
        return self.error(f"line too long (limit {MAX_LINE_BYTES} bytes)")


def parser(description, default_backlog):
    """Options shared by every baseline, named like the Rust servers' flags."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9090,
                   help="port to bind; 0 picks a free one (default 9090, as in the article)")
    p.add_argument("--delay", type=parse_recipe, default=parse_recipe("100ms"),
                   help="simulated work per request, a recipe of phases run in order: "
                        "PHASE(+PHASE)*, each KIND:DURATION (KIND as for --delay-kind; "
                        "without KIND: the phase takes --delay-kind). DURATION: bare "
                        "milliseconds, 100ms, fixed:1s, uniform:50ms..150ms or exp:100ms. "
                        "E.g. spin:2ms+wait:100ms (2 ms of CPU work, then a 100 ms database "
                        "wait), block:100ms (a blocking driver), wait:uniform:50ms..150ms "
                        "(default 100ms)")
    p.add_argument("--delay-kind", choices=DELAY_KINDS, default="wait",
                   help="how the phases of --delay that name no kind are spent: wait (the "
                        "server's own way of waiting), block (time.sleep on the thread that "
                        "serves the connection, the event loop's included), spin (a busy loop "
                        "on that thread); a kind the --delay spec names wins; default wait")
    p.add_argument("--framing", type=Framing.named, default=Framing("line"),
                   help="line (a request per line, the default) or raw (the article's: "
                        "the first chunk read is the message, then close)")
    p.add_argument("--backlog", type=int, default=default_backlog,
                   help=f"listen backlog (default {default_backlog}, the article's library default)")
    p.add_argument("--shutdown-timeout", type=parse_delay, default=5.0,
                   help="on SIGTERM, how long to let requests already received finish (default 5s)")
    return p


def raise_nofile_limit():
    """Raises the soft open-file limit to the hard one, as the Rust servers do.

    Without it Python keeps the soft limit it inherited and 10000 connections fail with
    EMFILE, which would measure the shell's limit, not the concurrency model.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# glibc's mallopt parameters (malloc.h) and the values tune_the_allocator sets them to.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above the 256 KiB buffer asyncio's transports hand each recv (and the threaded row's 64 KiB
# one), so that a read's buffer comes from the heap; the trim threshold twice that, as
# glibc's own raising of the threshold sets it.
MMAP_THRESHOLD_BYTES = 512 * 1024
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


def tune_the_allocator():
    """Fixes glibc's mmap and trim thresholds, as the Rust servers fix theirs (server-common's
    run.rs), so that a baseline's cost per request does not depend on its allocator's history.
    Returns True when it did (glibc), False elsewhere; says so on stderr when glibc refuses,
    since the run's figures then carry the allocator's history again.

    asyncio reads each chunk into a fresh 256 KiB bytes object and shrinks it to what came.
    Above glibc's starting mmap threshold (128 KiB), that is an mmap, an mremap and a munmap
    per request, and two page faults, until some allocation of that size or more happens to
    be freed whole: then glibc raises its threshold and serves the buffers from the heap for
    good. Which a run gets depends on what came before. python-asyncio-timer at 16000 req/s
    over 4959 connections on CPU 0 spent 1.58-1.97 s of CPU per 2 s with a mapping per
    request (olc as the client), 0.99-1.01 s without (loadgen as the client, or either
    client with these thresholds fixed: 1.00 and 1.03 s; with the mmap threshold alone
    1.15-1.20 s, a heap trimmed and grown again per request), by perf stat on the server.
    At 22314 req/s olc saw a p50 of 300-600 ms, and 102 ms at p99 with the thresholds fixed.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for parameter, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                             (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        if mallopt(parameter, value) != 1:
            print(f"warning: glibc refused mallopt({parameter}, {value}): the allocator's "
                  "thresholds are its own", file=sys.stderr)
            return False
    return True


def decode(line):
    """One request (without its "\\n") as text, or None when it is not UTF-8.

    The reply is then text.upper(): Unicode's full case mapping, as echo-core's, so
    "straße" becomes "STRASSE".
    """
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def hold_thread(kind, seconds):
    """Spends a delay on the calling thread: a busy loop for "spin", time.sleep otherwise.

    The same as server-common's spend_on_thread: on an event loop's thread, "block" and
    "spin" stall every connection of the loop, which is what they are there to show. A
    spin is CPU work counted on the thread's own CPU clock, so a spin that waits for the
    GIL or a core lasts longer, as real work does.
    """
    if kind == "spin":
        done = time.thread_time() + seconds
        while time.thread_time() < done:
            pass
    else:
        time.sleep(seconds)


def announce(address):
    """Prints the one line tools parse to learn the port, and flushes it at once."""
    host, port = address[0], address[1]
    print(f"listening on {host}:{port}", flush=True)


class Counters:
    """Connections, requests and errors, for the one-line summary printed at exit."""

    def __init__(self):
        self._lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.errors = 0

    def add(self, connections=0, requests=0, errors=0):
        with self._lock:
            self.connections += connections
            self.requests += requests
            self.errors += errors

    def summary(self, name):
        """Writes the exit summary to stderr, the same shape as the Rust servers'."""
        print(f"{name}: connections={self.connections} requests={self.requests} "
              f"errors={self.errors}", file=sys.stderr, flush=True)


class LoopShared:
    """What every connection of one event-loop server shares: the recipe, the kind of its
    phases that name none and the framing, the counters, the offload pool (--offload N), and
    the count of requests in progress (a "wait" each, whatever its phases), which a SIGTERM
    drain waits on.

    The count is kept instead of scanning the connections so that a drain is woken by the
    last reply (an Event), not by polling 10000 connections every few milliseconds.
    """

    def __init__(self, recipe, kind="wait", framing=None, offload=0):
        self.recipe = recipe
        self.kind = kind
        self.framing = framing or Framing("line")
        self.executor = (concurrent.futures.ThreadPoolExecutor(offload, "offload")
                         if offload else None)
        self.counters = Counters()
        self.waits = 0
        self.stopping = False
        self.drained = asyncio.Event()

    def phases(self):
        """One request's phases, drawn now: (kind, seconds) pairs. A "wait" phase is the
        loop's own wait; "block" and "spin" hold the loop's thread (hold_thread)."""
        return self.recipe.draw(self.kind)

    def offloads(self):
        """True when block and spin phases go to the --offload pool instead of the loop."""
        return self.executor is not None

    def hold_in_pool(self, kind, seconds):
        """The fix for a blocking call in a coroutine: the same call, on the --offload pool
        through `loop.run_in_executor`; returns its asyncio future. The loop serves every
        other connection meanwhile; a call waiting for a free thread queues in the
        executor, never dropped."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.executor, hold_thread, kind, seconds)

    def wait_started(self):
        self.waits += 1

    def wait_ended(self):
        self.waits -= 1
        if self.stopping and self.waits == 0:
            self.drained.set()

    async def drain(self, timeout):
        """Waits, at most `timeout` seconds, for the waits in progress to be answered.

        A connection with requests still queued always has one wait in progress (the next
        one starts as the previous reply is written), so no wait means nothing left to answer.
        """
        self.stopping = True
        if self.waits == 0:
            return
        try:
            await asyncio.wait_for(self.drained.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class LoopConnection(asyncio.Protocol):
    """One connection of an event-loop baseline: requests are queued and answered strictly
    in order, one wait at a time.

    Everything but the wait lives here, so the asyncio servers differ in one method:
    `begin(message)` spends the simulated IO wait for one decoded request and, once it is
    over, calls `answer(self.reply(upper))`; `self.wait` holds what `cancel()` stops if the
    client goes away first (a task, or a timer handle).
    """

    def __init__(self, shared):
        self.shared = shared
        self.transport = None
        self.partial = bytearray()
        self.queue = collections.deque()
        self.wait = None
        self.eof = False

    def begin(self, message):
        raise NotImplementedError("a LoopConnection subclass spends the wait")

    def reply(self, upper):
        """The bytes of the reply to a message, once upper-cased, in this framing."""
        return self.shared.framing.reply(upper)

    def connection_made(self, transport):
        self.transport = transport
        self.shared.counters.add(connections=1)

    def data_received(self, data):
        if self.shared.framing.raw:
            self.raw_received(data)
            return
        self.partial += data
        *lines, rest = self.partial.split(b"\n")
        self.queue.extend(bytes(line) for line in lines)
        self.partial = bytearray(rest)
        if len(self.partial) > MAX_LINE_BYTES:
            self.refuse_too_long()
            return
        self.advance()

    def raw_received(self, data):
        """The article's framing: the first chunk is the message, the rest is ignored, and
        the connection closes once it is answered."""
        if self.eof:
            return
        self.eof = True
        if len(data) > MAX_LINE_BYTES:
            self.refuse_too_long()
            return
        self.queue.append(bytes(data))
        self.advance()

    def refuse_too_long(self):
        self.transport.write(self.shared.framing.too_long())
        self.shared.counters.add(errors=1)
        self.transport.close()

    def eof_received(self):
        self.eof = True
        if self.partial:
            self.queue.append(bytes(self.partial))
            self.partial = bytearray()
        self.advance()
        return True  # keep the transport open to write the remaining replies

    def advance(self):
        """Starts the next request's wait, or closes once everything asked has been answered."""
        if self.wait is not None or self.transport.is_closing():
            return
        while self.queue:
            message = decode(self.queue.popleft())
            if message is None:
                self.transport.write(self.shared.framing.invalid_utf8())
                self.shared.counters.add(errors=1)
                continue
            self.shared.wait_started()
            self.begin(message)
            return
        if self.eof:
            self.transport.close()

    def answer(self, reply):
        """Ends the wait in progress with `reply` written, then starts the next request."""
        self.wait = None
        if not self.transport.is_closing():
            self.transport.write(reply)
            self.shared.counters.add(requests=1)
            self.advance()
        # After advance, so a connection with more queued is never counted as drained.
        self.shared.wait_ended()

    def connection_lost(self, exc):
        if exc is not None:
            self.shared.counters.add(errors=1)
        if self.wait is not None:
            self.wait.cancel()
            self.wait = None
            self.shared.wait_ended()


def loop_parser(description):
    """The event-loop baselines' options; their default backlog is asyncio.create_server's
    100, the article's."""
    p = parser(description, default_backlog=100)
    p.add_argument("--offload", type=parse_offload, default=0, metavar="N",
                   help="run block and spin delays on a ThreadPoolExecutor of N threads "
                        "through loop.run_in_executor, the fix for a blocking call in a "
                        f"coroutine; 0 (default) is off; at most {MAX_OFFLOAD_THREADS}")
    return p


async def serve_loop(args, connection, name):
    """Serves `connection` (a LoopConnection subclass) until SIGTERM or SIGINT, then stops
    accepting, drains, and prints the summary."""
    loop = asyncio.get_running_loop()
    shared = LoopShared(args.delay, args.delay_kind, args.framing, args.offload)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(
        lambda: connection(shared), args.host, args.port, backlog=args.backlog,
        reuse_address=True)
    announce(server.sockets[0].getsockname())
    await stop.wait()
    server.close()
    await shared.drain(args.shutdown_timeout)
    if shared.executor is not None:
        # Calls still running past the drain finish on their own; nothing waits for them.
        shared.executor.shutdown(wait=False)
    shared.counters.summary(name)


def run_loop_server(description, connection, name, run=asyncio.run):
    """The whole life of an event-loop baseline: options, descriptor limit, then `run` (the
    event loop's runner: asyncio.run, or uvloop.run) of serve_loop. Returns the exit code."""
    args = loop_parser(description).parse_args()
    raise_nofile_limit()
    tune_the_allocator()
    run(serve_loop(args, connection, name))
    return 0
