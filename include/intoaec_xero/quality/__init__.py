"""Data quality: what a batch must pass before it reaches IntoAEC's tables, and what happens if not.

- :mod:`.suites` — a Great Expectations suite per target table, as code, each check with a
  severity (``error`` quarantines the batch, ``hold`` holds back only the failing records and
  loads the rest, ``warn`` records and loads);
- :mod:`.frames` — rows to frames, with the derived columns the suites read;
- :mod:`.runner` — runs the suites (GX 1.x, one ephemeral context per process);
- :mod:`.reconcile` / :mod:`.reports` — checks across tables after each load, including the
  ledger against Xero's own Trial Balance;
- :mod:`.quarantine` — held records, rejected batches and the way back (release);
- :mod:`.record` — ``dq_results`` and the ``sync_runs`` summary; :mod:`.docs` — Data Docs;
- :mod:`.cli` — ``intoaec-xero quarantine …`` and ``intoaec-xero quality``.

Importing this package is cheap: pandas and Great Expectations load only when a batch is checked.
"""
