"""``intoaec-xero quarantine list|show|release`` and ``intoaec-xero quality``.

What the data team does when a run ends with "batch quarantined": see what failed and why, look
at the raw records, and once the cause is fixed re-load the batch from its kept raw pages.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def register(subparsers) -> None:
    quarantine = subparsers.add_parser("quarantine", help="batches held back by a failed data quality check")
    commands = quarantine.add_subparsers(dest="quarantine_command", required=True)

    listing = commands.add_parser("list", help="quarantined batches (newest first)")
    listing.add_argument("--all", action="store_true", help="include released and superseded batches")
    listing.add_argument("--tenant", default="", help="a tenant id or organisation name")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="one batch: its failing checks and raw records")
    show.add_argument("batch_id", type=int)
    show.add_argument("--limit", type=int, default=20, help="failing records to print (default 20; 0: all)")
    show.add_argument("--raw", action="store_true", help="print each record's raw JSON in full")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    release = commands.add_parser(
        "release", help="re-load a batch from its kept raw pages through the current checks (after a fix)")
    release.add_argument("batch_id", type=int)
    release.add_argument("--accept", action="append", default=[], metavar="CHECK",
                         help="let this failing check through for this release only, recorded as a warning "
                              "(e.g. status_in_enum for a status Xero just introduced); repeatable")
    release.add_argument("--force", action="store_true",
                         help="release a batch that was already released or superseded")
    release.set_defaults(func=cmd_release)

    quality = subparsers.add_parser("quality", help="the data quality checks of a run (the latest by default)")
    quality.add_argument("--run-id", default="")
    quality.add_argument("--brief", action="store_true", help="one line per tenant")
    quality.set_defaults(func=cmd_quality)


def _engine(args):
    from intoaec_xero import db
    from intoaec_xero.cli import _engine as engine_from_args

    engine = engine_from_args(args)
    db.upgrade(engine)
    return engine


def cmd_list(args) -> int:
    from intoaec_xero.quality import quarantine

    batches = quarantine.list_batches(_engine(args), include_closed=args.all, tenant=args.tenant or None)
    if args.json:
        print(json.dumps(batches, indent=2, default=str))
        return 0
    if not batches:
        print("No quarantined batches." if not args.all else "No batch was ever quarantined.")
        return 0
    print(f"{'id':>5}  {'status':<11}  {'quarantined (UTC)':<19}  {'tenant':<28}  {'stream':<20}  "
          f"{'records':>7}  checks")
    for b in batches:
        when = b["quarantined_at"].strftime("%Y-%m-%d %H:%M:%S") if b["quarantined_at"] else "-"
        tenant = (b["tenant_name"] or b["tenant_id"])[:28]
        print(f"{b['id']:>5}  {b['status']:<11}  {when:<19}  {tenant:<28}  {b['stream']:<20}  "
              f"{b['records'] or 0:>7}  {', '.join(b['checks'] or [])}")
    return 0


def cmd_show(args) -> int:
    from intoaec_xero.quality import quarantine

    engine = _engine(args)
    batch = quarantine.get_batch(engine, args.batch_id)
    records = quarantine.batch_records(engine, args.batch_id, limit=args.limit or None)
    counts = quarantine.count_records(engine, args.batch_id)
    if args.json:
        print(json.dumps({"batch": batch, "records_by_check": counts, "failing_records": records},
                         indent=2, default=str))
        return 0
    print(f"Batch #{batch['id']}: {batch['status']}")
    print(f"  tenant   {batch['tenant_name'] or '?'} ({batch['tenant_id']})")
    print(f"  stream   {batch['stream']}, run {batch['run_id']}, {batch['records'] or 0} records")
    print(f"  when     quarantined {batch['quarantined_at']}"
          + (f"; {batch['status']} {batch['released_at']} by {batch['released_by_run']}"
             if batch["released_at"] else ""))
    print(f"  checks   {', '.join(batch['checks'] or [])}")
    print(f"  message  {batch['message']}")
    print("  records  " + ", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
    print()
    for record in records:
        print(f"- {record['table_name']}.{record['check_name']} — record {record['record_key']}")
        print(f"    {record['reason']}")
        print("    raw: " + _raw(record["raw_record"], full=args.raw))
    shown = len(records)
    failing = sum(n for name, n in counts.items() if name != "(passed)")
    if shown < failing:
        print(f"... {failing - shown} more failing record(s): --limit 0 prints them all.")
    if batch["status"] == quarantine.QUARANTINED:
        print(f"\nAfter fixing the cause: intoaec-xero quarantine release {batch['id']}"
              " (or, if Xero's data was fixed, the next sync loads it and marks this batch superseded).")
    return 0


def _raw(record: Any, *, full: bool) -> str:
    text = json.dumps(record, default=str, sort_keys=True) if not isinstance(record, str) else record
    return text if full or len(text) <= 300 else text[:297] + "..."


def cmd_release(args) -> int:
    from intoaec_xero.quality import quarantine
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir

    outcome = quarantine.release(_engine(args), RawStore(raw_dir()), args.batch_id,
                                 accept=tuple(args.accept), force=args.force)
    stream = sys.stdout if outcome.released else sys.stderr
    print(outcome.message, file=stream)
    for check in outcome.results:
        if not check.passed:
            print(f"  {'ERROR' if check.failed_error else 'warn '} {check.describe()}", file=stream)
    return 0 if outcome.released else 1


def cmd_quality(args) -> int:
    from intoaec_xero.quality import docs
    from intoaec_xero.quality.record import format_summary

    print(format_summary(_engine(args), args.run_id or None, details=not args.brief))
    print(f"Data Docs: {docs.describe(docs.latest_index())}")
    return 0
