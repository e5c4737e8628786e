"""``python -m examples.intoaec_app --api-url … --firm-id … --firm-name …`` (token: INTOAEC_CONNECT_API_TOKEN)."""

from __future__ import annotations

import argparse
import os
import sys

TOKEN_VARIABLE = "INTOAEC_CONNECT_API_TOKEN"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.intoaec_app",
                                     description="A stand-in for IntoAEC's web app that connects a firm's Xero "
                                                 "through the connect API. The API's bearer token is read from "
                                                 f"the environment variable {TOKEN_VARIABLE}.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-url", required=True,
                        help="the connect API, e.g. http://127.0.0.1:8080/xero/api/v1")
    parser.add_argument("--firm-id", required=True, help="the firm this app is signed in as, e.g. acme")
    parser.add_argument("--firm-name", default=None, help="shown on the pages (default: the firm id)")
    parser.add_argument("--public-url", default=None,
                        help="how browsers reach this app (default http://HOST:PORT); the return URL is built on "
                             "it and must be allow-listed in the intoaec_app connection")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        print(f"Set {TOKEN_VARIABLE} to the password of the Airflow connection intoaec_app.", file=sys.stderr)
        return 2

    import uvicorn

    from examples.intoaec_app.app import Config, create_app

    public_url = (args.public_url or f"http://{args.host}:{args.port}").rstrip("/")
    config = Config(api_url=args.api_url, firm_id=args.firm_id, firm_name=args.firm_name or args.firm_id,
                    public_url=public_url, token=token)
    print(f"IntoAEC stand-in for {config.firm_name} on {public_url}/ (connect API: {config.api_url})", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
