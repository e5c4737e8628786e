"""History: month windows of documents, and the resumable walk through a tenant's whole ledger.

Both load through the sync's own load (same validation and quarantine, idempotent upserts) and
both stay inside a share of Xero's daily quota, so the scheduled sync always has its part. The
Airflow DAG ``xero_backfill`` runs them; ``intoaec-xero backfill status`` shows where they are.
Import the modules themselves (``backfill.journals``, ``backfill.windows``, ``backfill.progress``):
this package imports nothing, so reading progress never loads the pipeline.
"""
