"""Xero's own Trial Balance, fetched with the journals and kept with the raw pages.

The ledger check compares what IntoAEC holds with what Xero reports for the same date, so the
report is part of the extract: kept once, a load, a replay and a quarantine release all check
against the same figures without another API call.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

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
    pending = progress.ledger_pending(engine, tenant_id)
    if pending:
        extracted.extra["trial_balance"] = {"skipped": pending}
        return
    as_at = datetime.now(UTC).date()
    try:
        response = client.get("get_report_trial_balance", tenant_id, "GET /Reports/TrialBalance",
                              date=as_at.isoformat())
    except XeroAccessDenied as error:
        extracted.extra["trial_balance"] = {"skipped": (
            f"Xero refused the trial balance report ({error.status}); the Xero connection needs the "
            f"{TRIAL_BALANCE_SCOPES[1]} scope: reconnect to grant it")}
        return
    except XeroError as error:
        extracted.extra["trial_balance"] = {"skipped": f"the trial balance report could not be read: {error}"}
        return
    raw.write_page(run_id, tenant_id, TRIAL_BALANCE, 1, response.body)
    extracted.extra["trial_balance"] = {"date": as_at.isoformat()}
