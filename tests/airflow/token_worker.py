"""One sync worker in its own OS process, as Airflow's workers are: for the token-store tests.

``python -m tests.airflow.token_worker --db-url URL --base-url SANDBOX [--ready-dir D]
[--refresh] [--die-after-xero-answers]`` prints one JSON line. With ``--ready-dir`` it says it
is ready and waits for a ``go`` file there, so several workers hit Xero at the same moment.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", default="xero_default")
    parser.add_argument("--ready-dir", default="")
    parser.add_argument("--refresh", action="store_true", help="force a refresh, as the keep-alive does")
    parser.add_argument("--die-after-xero-answers", action="store_true",
                        help="SIGKILL this process after Xero answered a refresh, before the commit")
    args = parser.parse_args()

    from intoaec_xero import db
    from intoaec_xero.client import XeroClient
    from intoaec_xero.errors import IntoAECXeroError
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore, fingerprint

    engine = db.create_db_engine(args.db_url)
    settings = XeroSettings.for_single_host(args.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", connection_key=args.key)
    client = XeroClient(settings, TokenStore(engine, args.key, TokenCipher.from_environment()), sleep=lambda s: None)
    if args.die_after_xero_answers:
        answer_from_xero = client._fetch_new_tokens

        def fetch_then_die(current):
            answer_from_xero(current)
            os.kill(os.getpid(), signal.SIGKILL)

        client._fetch_new_tokens = fetch_then_die

    if args.ready_dir:
        ready = Path(args.ready_dir)
        (ready / f"ready.{os.getpid()}").touch()
        deadline = time.monotonic() + 60
        while not (ready / "go").exists():
            if time.monotonic() > deadline:
                print(json.dumps({"ok": False, "error": "never told to go"}))
                return 2
            time.sleep(0.002)
    try:
        if args.refresh:
            client.current_tokens()
            client.refresh_tokens(force=True)
        organisations = client.connections()
    except IntoAECXeroError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 3
    print(json.dumps({"ok": True, "organisations": len(organisations),
                      "token": fingerprint(client.current_tokens().access_token)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
