#!/usr/bin/env python3
"""The article's asyncio server (asyncio_server.py, the same code) run on uvloop's loop.

uvloop is the event loop Python users put under asyncio when it must be fast, so the
"python-uvloop" row is the strongest Python a reader would reach for. It is not in the
standard library: without it this program exits at once with status 3 (SKIPPED) and says
why on stderr, so `cargo xtask compare` can show the row as skipped with that reason while
the project stays runnable with the standard library alone. `pip install uvloop` gets it.

Run it as `python3 baselines/uvloop_server.py --port 0 --delay 100 --backlog 4096`; it prints
`listening on <ip>:<port>` when ready and exits 0 on SIGTERM with a summary on stderr.
"""

import sys

import asyncio_server

NAME = "python-uvloop"

# Distinct from 0 (served), 1 (crashed) and 2 (bad flags, argparse's).
SKIPPED = 3


def main():
    try:
        import uvloop
    except ImportError:
        print("skipped: uvloop is not importable (pip install uvloop)",
              file=sys.stderr, flush=True)
        return SKIPPED
    if not hasattr(uvloop, "run"):
        print(f"skipped: uvloop {uvloop.__version__} has no uvloop.run "
              "(pip install --upgrade uvloop)", file=sys.stderr, flush=True)
        return SKIPPED
    return asyncio_server.main(NAME, uvloop.run)


if __name__ == "__main__":
    sys.exit(main())
