"""Shared pieces of the two article baselines: options, the reply rule, counters.

Standard library only, so that `cargo xtask compare` can run these rows on any machine that
has a `python3`. Both servers speak the project's line protocol (see docs/PROTOCOL.md):
a request is a line ending in "\\n", the reply is that line upper-cased plus "\\n", a
connection carries many requests and closes when the client closes its side.
"""

import argparse
import re
import resource
import sys
import threading

# The article's limit on one message; here the limit on one line, like echo-core's
# max_line_bytes default (64 KiB).
MAX_LINE_BYTES = 64 * 1024

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1e-3}


def parse_delay(text):
    """Reads a delay as the Rust servers do ("100ms", "1s", "0") or as bare milliseconds.

    Returns seconds as a float. Raises argparse.ArgumentTypeError naming the text when it is
    not a delay, so a typo fails at start instead of silently running at zero delay.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid delay {text!r}: want e.g. 100, 100ms or 1s")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parser(description, default_backlog):
    """Options shared by both baselines, named like the Rust servers' flags."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9090,
                   help="port to bind; 0 picks a free one (default 9090, as in the article)")
    p.add_argument("--delay", type=parse_delay, default=0.1,
                   help="simulated IO wait per request: bare milliseconds or 100ms/1s (default 100)")
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


INVALID_UTF8 = b"ERR invalid utf-8\n"


def reply_for(line):
    """The reply to one request line (without its "\\n"), or None when it is not UTF-8.

    echo-core answers invalid UTF-8 at once with INVALID_UTF8, without the simulated wait
    (it never reaches the "database"); the baselines do the same.
    """
    try:
        return line.decode("utf-8").upper().encode("utf-8") + b"\n"
    except UnicodeDecodeError:
        return None


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
