"""One journal-backfill pass in its own OS process, as an Airflow worker runs it: for the kill test.

``python -m tests.intoaec_xero.backfill.walker --db-url URL --base-url SANDBOX --tenant JSON
--run-id ID --share S --day-limit N`` prints the pass's outcome as one JSON line. Its lease is
short, so a test that kills it does not wait long for another pass to take over.
``--hang-after-offset N`` makes it stop for good once the page that reaches journal N is loaded
and before that page's checkpoint is written, like a worker that dies between the two: a test
then kills it at exactly that point.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--share", type=float, default=0.6)
    parser.add_argument("--day-limit", type=int, default=5000)
    parser.add_argument("--raw-dir", required=True)
    parser.add_argument("--lease-seconds", type=float, default=3)
    parser.add_argument("--hang-after-offset", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.hang_after_offset is not None:
        _hang_before_checkpoint(args.hang_after_offset)

    from intoaec_xero import db
    from intoaec_xero.backfill.journals import backfill_client, run_pass
    from intoaec_xero.backfill.quota import QuotaShare
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenStore

    engine = db.create_db_engine(args.db_url)
    settings = XeroSettings.for_single_host(args.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0)
    quota = QuotaShare(share=args.share, day_limit=args.day_limit, minute_limit=0)
    client = backfill_client(settings, TokenStore(engine, settings.connection_key), quota,
                             sleep=lambda s: None)
    outcome = run_pass(client, engine, RawStore(args.raw_dir), args.run_id, json.loads(args.tenant), quota,
                       lease_ttl=timedelta(seconds=args.lease_seconds))
    print(json.dumps(outcome.to_dict(), default=str), flush=True)
    return 0


def _hang_before_checkpoint(offset: int) -> None:
    import threading

    from intoaec_xero.backfill import journals

    checkpoint = journals._Walker._checkpoint

    def hanging(self, reached: int, *args, **kwargs):
        if reached >= offset:
            print(json.dumps({"hanging_at": reached}), flush=True)
            threading.Event().wait()  # the page is committed; its checkpoint never will be
        return checkpoint(self, reached, *args, **kwargs)

    journals._Walker._checkpoint = hanging


if __name__ == "__main__":
    raise SystemExit(main())
