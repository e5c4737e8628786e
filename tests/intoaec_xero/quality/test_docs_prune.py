"""Data Docs keep the newest runs of every suite, and only runs are pruned, never a suite."""

from __future__ import annotations

import os

from intoaec_xero.quality import docs

TABLES = ["accounts", "clients", "credit_notes", "invoice_lines", "invoices", "journal_lines", "journals",
          "payments", "tracking_categories", "tracking_options"]


def _runs(tmp_path, count: int, results_per_table: int = 1) -> list[str]:
    runs = [f"run-{n}" for n in range(count)]
    for age, run in enumerate(reversed(runs)):  # run-0 oldest
        for folder, name in ((docs.results_dir(tmp_path), "result.json"),
                             (docs.docs_dir(tmp_path) / "validations", "page.html")):
            for table in TABLES:
                target = folder / "xero" / table / run / "20261203T000000Z"
                target.mkdir(parents=True)
                for n in range(results_per_table):
                    (target / name.replace(".", f"{n}.")).write_text("{}")
                stamp = 1_700_000_000 - age * 60
                os.utime(target.parent, (stamp, stamp))
    return runs


def test_the_oldest_runs_go_and_every_suite_of_the_kept_runs_stays(tmp_path):
    runs = _runs(tmp_path, docs.KEEP_RUNS + 2)
    # A suite touched last (its folder newer than any run) must not count as a run.
    os.utime(docs.results_dir(tmp_path) / "xero" / "invoices", None)

    docs._prune(tmp_path)

    kept = runs[-docs.KEEP_RUNS:]
    for folder in (docs.results_dir(tmp_path), docs.docs_dir(tmp_path) / "validations"):
        for table in TABLES:
            assert sorted(p.name for p in (folder / "xero" / table).iterdir()) == sorted(kept), (folder, table)


def test_runs_of_many_tenants_keep_fewer_runs_and_always_the_latest(tmp_path, monkeypatch):
    # Each run here holds 10 tables x 4 results: with room for 100, two runs fit, then only the newest.
    runs = _runs(tmp_path, docs.KEEP_RUNS, results_per_table=4)
    monkeypatch.setattr(docs, "KEEP_RESULTS", 100)
    docs._prune(tmp_path)
    assert sorted(p.name for p in (docs.results_dir(tmp_path) / "xero" / "invoices").iterdir()) == runs[-2:]
    monkeypatch.setattr(docs, "KEEP_RESULTS", 1)
    docs._prune(tmp_path)
    for folder in (docs.results_dir(tmp_path), docs.docs_dir(tmp_path) / "validations"):
        assert [p.name for p in (folder / "xero" / "invoices").iterdir()] == runs[-1:]


def test_every_failed_chunk_gets_a_page_and_passing_chunks_share_one():
    from types import SimpleNamespace

    ok, bad = SimpleNamespace(success=True), SimpleNamespace(success=False)
    validations = [("journals", 1, ok), ("journal_lines", 1, ok), ("journals", 2, bad), ("journals", 3, ok),
                   ("journal_lines", 2, ok), ("journals", 4, bad)]
    assert [(table, chunk) for table, chunk, _ in docs._shown(validations)] == [
        ("journals", 1), ("journal_lines", 1), ("journals", 2), ("journals", 4)]
