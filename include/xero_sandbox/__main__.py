"""``python -m xero_sandbox``: start the local Xero sandbox.

Prints ``Xero sandbox listening on http://HOST:PORT`` once the socket accepts connections, so
scripts and ``testing.running_sandbox`` can wait for that line or poll ``/_sandbox/health``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from datetime import datetime

from .generate import DATASETS
from .limits import LimitConfig


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m xero_sandbox", description="Local Xero sandbox (identity + "
                                "Accounting API + test controls) serving deterministic AEC books.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--dataset", default="small", choices=sorted(DATASETS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tenants", type=int, default=None,
                   help="resize the dataset to N organisations (its organisations repeated in order)")
    p.add_argument("--app-without-journals", action="store_true",
                   help="the demo app sandbox-client is below Xero's Advanced tier: GET /Journals answers it "
                        "401 AuthorizationUnsuccessful for every organisation (sandbox-client-core always is)")
    p.add_argument("--no-limits", action="store_true", help="switch rate limits off (headers still sent)")
    p.add_argument("--minute-limit", type=int, default=60)
    p.add_argument("--day-limit", type=int, default=5000)
    p.add_argument("--concurrent-limit", type=int, default=5)
    p.add_argument("--app-minute-limit", type=int, default=10_000)
    p.add_argument("--clock-start", default=None,
                   help="ISO timestamp the sandbox clock starts at (default: now, never before the data ends)")
    p.add_argument("--max-page-size", type=int, default=None,
                   help="serve at most N rows a page (and Journals per call) whatever pageSize asks; "
                        "pagination stays truthful (default: Xero's 1000, Journals 100)")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import uvicorn

    from .app import create_app

    start_ms = None
    if args.clock_start:
        dt = datetime.fromisoformat(args.clock_start.replace("Z", "+00:00"))
        start_ms = int(dt.timestamp() * 1000)
    t0 = time.monotonic()
    try:
        app = create_app(args.dataset, args.seed, limits=not args.no_limits, tenants=args.tenants,
                         clock_start_ms=start_ms, max_page_size=args.max_page_size,
                         app_without_journals=args.app_without_journals,
                         limit_config=LimitConfig(per_minute=args.minute_limit, per_day=args.day_limit,
                                                  concurrent=args.concurrent_limit,
                                                  app_per_minute=args.app_minute_limit))
    except ValueError as e:
        print(f"xero_sandbox: {e}", file=sys.stderr)
        return 2
    built = time.monotonic() - t0
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            lifespan="off", timeout_graceful_shutdown=2)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"Xero sandbox listening on http://{args.host}:{args.port}", flush=True)
                print(f"(dataset {args.dataset}, seed {args.seed}, built in {built:.1f}s)", file=sys.stderr,
                      flush=True)

    server = Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
