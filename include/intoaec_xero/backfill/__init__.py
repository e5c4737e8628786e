"""History: month windows of documents, and the resumable walk through a tenant's whole ledger.

Both load through the sync's own load (same validation and quarantine, idempotent upserts) and
both stay inside a share of Xero's daily quota, so the scheduled sync always has its part. The
Airflow DAG ``xero_backfill`` runs them; ``intoaec-xero backfill status`` shows where they are.
"""

from intoaec_xero.backfill.journals import JournalPass, backfill_client, run_pass
from intoaec_xero.backfill.quota import QuotaShare
from intoaec_xero.backfill.windows import extract_window, record_loaded, where_clause

__all__ = ["JournalPass", "QuotaShare", "backfill_client", "extract_window", "record_loaded", "run_pass",
           "where_clause"]
