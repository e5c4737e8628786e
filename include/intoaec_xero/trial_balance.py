"""Xero's own Trial Balance, fetched with the journals (or the documents a derived ledger is built from)
and kept with the raw pages.

The ledger check compares what IntoAEC holds with what Xero reports for the same date, so the
report is part of the extract: kept once, a load, a replay and a quarantine release all check
against the same figures without another API call.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from intoaec_xero.backfill import progress
from intoaec_xero.errors import XeroAccessDenied, XeroError
from intoaec_xero.quality.reports import TRIAL_BALANCE, TRIAL_BALANCE_SCOPES
from intoaec_xero.rawstore import RawStore

log = logging.getLogger(__name__)


def fetch_with_journals(client, engine, raw: RawStore, run_id: str, tenant_id: str, stream, extracted) -> None:
    """Called once a stream's pages are kept: the journals bring their trial balance along.

    One call per tenant and run, and only when it can tell something. It is not counted in the
    journals' API calls (those measure the walk), but it is in the client's. Never fails the
    extract: without the report the ledger check is skipped, and says why.
    """
    if stream.name != "journals" or extracted.unavailable:
        return
    if extracted.records == 0 and not extracted.full:
        # No journal since the last run: neither the ledger nor Xero's report can have changed.
        extracted.extra["trial_balance"] = {"skipped": "no new journals since the last run, so neither the "
                                                       "ledger nor Xero's trial balance changed"}
        return
    extracted.extra["trial_balance"] = _fetch(client, engine, raw, run_id, tenant_id)


# The documents a derived ledger is built from: when none of them changed, neither did the ledger.
LEDGER_STREAMS = ("accounts", "invoices", "credit_notes", "payments", "bank_transactions", "bank_transfers",
                  "manual_journals", "prepayments", "overpayments")


def fetch_for_derived_ledger(client, engine, raw: RawStore, run_id: str, tenant_id: str,
                             extracts: list[dict[str, Any]]) -> None:
    """Called once a tenant's streams are kept: where Journals were refused, the report comes with the
    documents instead, for the check of the ledger derived from them (kept on the journals' item)."""
    journals = next((e for e in extracts if e["stream"] == "journals"), None)
    if journals is None or (journals.get("extra") or {}).get("ledger") != "derived":
        return
    changed = [e for e in extracts if e["stream"] in LEDGER_STREAMS and (e.get("records") or e.get("full"))]
    if not changed:
        journals["extra"]["trial_balance"] = {"skipped": "no document changed since the last run, so neither the "
                                                         "derived ledger nor Xero's trial balance changed"}
        return
    journals["extra"]["trial_balance"] = _fetch(client, engine, raw, run_id, tenant_id)


def _fetch(client, engine, raw: RawStore, run_id: str, tenant_id: str) -> dict[str, Any]:
    """One call for Xero's Trial Balance as at today; what the check needs, or why it is skipped."""
    pending = progress.ledger_pending(engine, tenant_id)
    if pending:
        return {"skipped": pending}
    as_at = datetime.now(UTC).date()
    try:
        response = client.get("get_report_trial_balance", tenant_id, "GET /Reports/TrialBalance",
                              date=as_at.isoformat())
    except XeroAccessDenied as error:
        return {"skipped": (f"Xero refused the trial balance report ({error.status}); the Xero connection needs "
                            f"the {TRIAL_BALANCE_SCOPES[1]} scope: reconnect to grant it")}
    except XeroError as error:
        return {"skipped": f"the trial balance report could not be read: {error}"}
    raw.write_page(run_id, tenant_id, TRIAL_BALANCE, 1, response.body)
    return {"date": as_at.isoformat()}
