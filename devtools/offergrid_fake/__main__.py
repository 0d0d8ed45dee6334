"""`python -m devtools.offergrid_fake`: serve the fake until SIGTERM or SIGINT.

Prints the base URL on the first line of stdout, so a launcher can wait for it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from devtools.offergrid_fake.answers import ANSWER_MODES, ANSWERS_ENV
from devtools.offergrid_fake.pagination import LIST_STYLES
from devtools.offergrid_fake.server import OffergridFake

API_KEYS_ENV = "OFFERGRID_FAKE_API_KEYS"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.offergrid_fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"a valid provider key (repeatable; default: ${API_KEYS_ENV}, comma-separated, or test-api-key)",
    )
    parser.add_argument(
        "--reseller-key", action="append", default=[], help="a key with the reseller role (403)"
    )
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--per-minute", type=int, default=100)
    parser.add_argument("--per-hour", type=int, default=10_000)
    parser.add_argument(
        "--answers",
        choices=ANSWER_MODES,
        default=None,
        help=f"how undocumented choices are answered (default: ${ANSWERS_ENV}, else documented)",
    )
    parser.add_argument("--page-size", type=int, default=None, help="overrides the answers' page size")
    parser.add_argument(
        "--list-style", choices=LIST_STYLES, default=None, help="overrides the answers' list styles"
    )
    parser.add_argument("--no-lifecycle", action="store_true", help="accept any status transition")
    parser.add_argument("--verbose", action="store_true", help="log request lines (never headers) to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    api_keys = (
        args.api_keys or [k for k in os.environ.get(API_KEYS_ENV, "").split(",") if k] or ["test-api-key"]
    )
    try:
        fake = OffergridFake(
            api_keys=api_keys,
            reseller_keys=args.reseller_key,
            time_scale=args.time_scale,
            per_minute=args.per_minute,
            per_hour=args.per_hour,
            page_size=args.page_size,
            list_style=args.list_style,
            answers=args.answers,
            host=args.host,
            port=args.port,
            enforce_lifecycle=not args.no_lifecycle,
            verbose=args.verbose,
        )
    except ValueError as error:
        print(f"offergrid-fake: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with fake:
        print(fake.base_url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
