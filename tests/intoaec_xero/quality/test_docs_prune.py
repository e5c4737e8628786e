"""Data Docs keep the newest runs of every suite, and only runs are pruned, never a suite."""

from __future__ import annotations

import os

from intoaec_xero.quality import docs

TABLES = ["accounts", "clients", "credit_notes", "invoice_lines", "invoices", "journal_lines", "journals",
          "payments", "tracking_categories", "tracking_options"]


def test_the_oldest_runs_go_and_every_suite_of_the_kept_runs_stays(tmp_path):
    runs = [f"run-{n}" for n in range(docs.KEEP_RUNS + 2)]
    for age, run in enumerate(reversed(runs)):  # run-0 oldest
        for folder, name in ((docs.results_dir(tmp_path), "result.json"),
                             (docs.docs_dir(tmp_path) / "validations", "page.html")):
            for table in TABLES:
                target = folder / "xero" / table / run / "20261203T000000Z"
                target.mkdir(parents=True)
                (target / name).write_text("{}")
                stamp = 1_700_000_000 - age * 60
                os.utime(target.parent, (stamp, stamp))
    # A suite touched last (its folder newer than any run) must not count as a run.
    os.utime(docs.results_dir(tmp_path) / "xero" / "invoices", None)

    docs._prune(tmp_path)

    kept = runs[-docs.KEEP_RUNS:]
    for folder in (docs.results_dir(tmp_path), docs.docs_dir(tmp_path) / "validations"):
        for table in TABLES:
            assert sorted(p.name for p in (folder / "xero" / table).iterdir()) == sorted(kept), (folder, table)


def test_every_failed_chunk_gets_a_page_and_passing_chunks_share_one():
    from types import SimpleNamespace

    ok, bad = SimpleNamespace(success=True), SimpleNamespace(success=False)
    validations = [("journals", 1, ok), ("journal_lines", 1, ok), ("journals", 2, bad), ("journals", 3, ok),
                   ("journal_lines", 2, ok), ("journals", 4, bad)]
    assert [(table, chunk) for table, chunk, _ in docs._shown(validations)] == [
        ("journals", 1), ("journal_lines", 1), ("journals", 2), ("journals", 4)]
