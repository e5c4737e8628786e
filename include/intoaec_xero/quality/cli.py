"""``intoaec-xero quarantine list|show|release`` and ``intoaec-xero quality``.

What the data team does when a run says records were held back or a batch was quarantined:
see what failed and why, look at the raw records, and once the cause is fixed load them.
Held records are named ``R<id>`` (e.g. ``R12``), quarantined batches by their number.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers) -> None:
    quarantine = subparsers.add_parser("quarantine", help="records and batches held back by data quality checks")
    commands = quarantine.add_subparsers(dest="quarantine_command", required=True)

    listing = commands.add_parser("list", help="held records and quarantined batches (newest first)")
    listing.add_argument("--all", action="store_true", help="include released and superseded ones")
    listing.add_argument("--tenant", default="", help="a tenant id or organisation name")
    listing.add_argument("--stream", default="", help="only this stream's held records (e.g. invoices)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="one held record (R12) or batch (3): its failing checks and raw JSON")
    show.add_argument("item", metavar="ID", help="R<id> for a held record, a number for a batch")
    show.add_argument("--limit", type=int, default=20, help="a batch's failing records to print (default 20; 0: all)")
    show.add_argument("--raw", action="store_true", help="print each record's raw JSON in full")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    release = commands.add_parser(
        "release", help="load held records (R12 R13 …) or re-load a batch (3) through the current checks, after a fix")
    release.add_argument("items", nargs="+", metavar="ID",
                         help="held records as R<id> (several at once), or one batch number")
    release.add_argument("--accept", action="append", default=[], metavar="CHECK",
                         help="let this failing check through for this release only, recorded as a warning "
                              "(e.g. status_in_enum for a status Xero just introduced); repeatable")
    release.add_argument("--corrected", type=argparse.FileType("rb"), metavar="FILE",
                         help="a held record only: load this corrected copy of it instead (Xero's JSON; '-' reads "
                              "stdin); it goes through the same checks and must keep the record's id")
    release.add_argument("--force", action="store_true",
                         help="release what was already released or superseded")
    release.set_defaults(func=cmd_release)

    quality = subparsers.add_parser("quality", help="the data quality checks of a run (the latest by default)")
    quality.add_argument("--run-id", default="")
    quality.add_argument("--brief", action="store_true", help="one line per tenant")
    quality.set_defaults(func=cmd_quality)


def _parse_item(text: str) -> tuple[str, int]:
    from intoaec_xero.quality.quarantine import parse_item

    return parse_item(text)


def _engine(args):
    from intoaec_xero import db
    from intoaec_xero.cli import _engine as engine_from_args

    engine = engine_from_args(args)
    db.upgrade(engine)
    return engine


def cmd_list(args) -> int:
    from intoaec_xero.quality import quarantine

    engine = _engine(args)
    held = quarantine.list_held(engine, include_closed=args.all, tenant=args.tenant or None,
                                stream=args.stream or None)
    batches = quarantine.list_batches(engine, include_closed=args.all, tenant=args.tenant or None)
    if args.stream:
        batches = [b for b in batches if b["stream"] == args.stream]
    if args.json:
        records = [{**{k: v for k, v in r.items() if k != "raw_record"}, "id": f"R{r['id']}"} for r in held]
        print(json.dumps({"held_records": records, "batches": batches}, indent=2, default=str))
        return 0
    if not held and not batches:
        print("Nothing is held back in quarantine." if not args.all else "Nothing was ever held back in quarantine.")
        return 0
    if held:
        print(f"Held records ({len(held)}): each failed a record-level check; the rest of its batch loaded.")
        print(f"{'id':>6}  {'status':<10}  {'held (UTC)':<19}  {'tenant':<24}  {'stream':<14}  {'record':<36}  checks")
        for r in held:
            tenant = (r["tenant_name"] or r["tenant_id"])[:24]
            print(f"{'R' + str(r['id']):>6}  {r['status']:<10}  {_when(r['held_at']):<19}  {tenant:<24}  "
                  f"{r['stream']:<14}  {r['record_key'][:36]:<36}  {', '.join(r['checks'] or [])}")
        print("Show one with `intoaec-xero quarantine show R<id>`; load it after a fix with "
              "`intoaec-xero quarantine release R<id>`.")
    if batches:
        if held:
            print()
        print(f"Quarantined batches ({len(batches)}): a batch-level check failed, so nothing of them loaded.")
        print(f"{'id':>6}  {'status':<11}  {'quarantined (UTC)':<19}  {'tenant':<24}  {'stream':<14}  "
              f"{'records':>7}  checks")
        for b in batches:
            tenant = (b["tenant_name"] or b["tenant_id"])[:24]
            print(f"{b['id']:>6}  {b['status']:<11}  {_when(b['quarantined_at']):<19}  {tenant:<24}  "
                  f"{b['stream']:<14}  {b['records'] or 0:>7}  {', '.join(b['checks'] or [])}")
    return 0


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def cmd_show(args) -> int:
    kind, number = _parse_item(args.item)
    if kind == "record":
        return _show_record(args, number)
    return _show_batch(args, number)


def _show_record(args, record_id: int) -> int:
    from intoaec_xero.quality import quarantine

    row = quarantine.get_held(_engine(args), record_id)
    record = quarantine.held_record_json(row)
    if args.json:
        record = None if row["raw_record"] is None else json.loads(row["raw_record"])  # amounts as JSON numbers
        print(json.dumps({**{k: v for k, v in row.items() if k != "raw_record"}, "id": f"R{row['id']}",
                          "record": record}, indent=2, default=str))
        return 0
    print(f"Held record R{row['id']}: {row['status']}")
    print(f"  tenant   {row['tenant_name'] or '?'} ({row['tenant_id']})")
    print(f"  stream   {row['stream']}, run {row['run_id']}, page {row['page']} record {row['position']}")
    print(f"  record   {row['record_key']}")
    print(f"  when     held {row['held_at']}"
          + (f"; {row['status']} {row['released_at']} by {row['released_by_run']}" if row["released_at"] else ""))
    if row["note"]:
        print(f"  note     {row['note']}")
    print("  failed")
    for reason in row["reasons"] or []:
        print(f"    {reason['table']}.{reason['check']}: {reason['reason']}")
    text = quarantine.exact_json(record) if record is not None else "(not kept)"
    print("  raw: " + (text if args.raw or len(text) <= 300 else text[:297] + "..."))
    if row["status"] == quarantine.HELD:
        print(f"\nAfter fixing the cause: intoaec-xero quarantine release R{row['id']} (or --accept CHECK, or "
              "--corrected FILE with a fixed copy). If Xero's record is corrected instead, the next sync loads it "
              "and marks this one superseded.")
    return 0


def _show_batch(args, batch_id: int) -> int:
    from intoaec_xero.quality import quarantine

    engine = _engine(args)
    batch = quarantine.get_batch(engine, batch_id)
    records = quarantine.batch_records(engine, batch_id, limit=args.limit or None)
    counts = quarantine.count_records(engine, batch_id)
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
    from intoaec_xero.errors import IntoAECXeroError

    parsed = [_parse_item(item) for item in args.items]
    kinds = {kind for kind, _ in parsed}
    if kinds == {"batch"}:
        if len(parsed) != 1 or args.corrected:
            raise IntoAECXeroError("Release one batch at a time (no --corrected: a batch re-loads its raw pages).")
        return _release_batch(args, parsed[0][1])
    if kinds != {"record"}:
        raise IntoAECXeroError("Release held records (R12 …) or one batch, not both at once.")
    return _release_records(args, [number for _, number in parsed])


def _release_records(args, record_ids: list[int]) -> int:
    from intoaec_xero import release
    from intoaec_xero.errors import IntoAECXeroError
    from intoaec_xero.parsing import loads

    corrected = None
    if args.corrected:
        try:
            corrected = loads(args.corrected.read())
        except ValueError as error:
            raise IntoAECXeroError(f"The corrected record is not JSON: {error}") from None
    outcomes = release.release_records(_engine(args), record_ids, accept=tuple(args.accept), force=args.force,
                                       corrected=corrected)
    for outcome in outcomes:
        stream = sys.stdout if outcome.ok else sys.stderr
        print(outcome.message, file=stream)
        for check in outcome.results:
            if not check.passed:
                print(f"  {_severity(check)} {check.describe()}", file=stream)
    return 0 if all(o.ok for o in outcomes) else 1


def _release_batch(args, batch_id: int) -> int:
    from intoaec_xero import release
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir

    outcome = release.release(_engine(args), RawStore(raw_dir(), args.conn_id), batch_id,
                              accept=tuple(args.accept), force=args.force)
    stream = sys.stdout if outcome.released else sys.stderr
    print(outcome.message, file=stream)
    for check in outcome.results:
        if not check.passed:
            print(f"  {_severity(check)} {check.describe()}", file=stream)
    return 0 if outcome.released else 1


def _severity(check) -> str:
    return {"error": "ERROR", "hold": "HOLD "}.get(check.severity, "warn ")


def cmd_quality(args) -> int:
    from intoaec_xero.quality import docs
    from intoaec_xero.quality.record import format_summary

    print(format_summary(_engine(args), args.run_id or None, details=not args.brief))
    print(f"Data Docs: {docs.describe(docs.latest_index())}")
    return 0
