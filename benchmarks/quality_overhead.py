"""What the data quality checks add to a full sync: the same sync with the checks on and off.

Each sync runs in a fresh child process against the sandbox (limits off) and a fresh database,
alternating the modes so background load on the machine falls on both alike. "Off" skips
exactly what the quality layer adds (the GX suites, reconciliation and the trial balance call,
dq_results, Data Docs); the page and record readability checks stay, they were always there.
"On (warm)" imports Great Expectations before the clock starts (a long-lived worker pays that
once); "on (cold)" includes the import. Writes the "Data quality overhead" section of
docs/benchmarks.md.

    .venv/bin/python -m benchmarks.quality_overhead [--dataset medium] [--backend sqlite|postgresql] [--repeat 2]

With ``--profile DIR`` each warm sync runs under cProfile and leaves its statistics in DIR
(``pstats`` reads them); the profiler slows the sync, so such a run does not touch the docs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.pg import drop_database, fresh_database
from benchmarks.report import write_section

HEADING = "Data quality overhead"
MODES = ("off", "on-warm", "on-cold")

CHILD = r'''
import json, os, resource, sys, time
mode, base_url, db_url, data_dir, profile = sys.argv[1:6]
os.environ["INTOAEC_DATA_DIR"] = data_dir
import_seconds = 0.0
if mode == "on-warm":
    started = time.perf_counter()
    from intoaec_xero.quality import runner
    runner.runtime()
    import_seconds = time.perf_counter() - started
from cryptography.fernet import Fernet
from intoaec_xero import db
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore
from xero_sandbox.testing import sign_in_and_consent
if mode == "off":
    import intoaec_xero.validate as validate
    from intoaec_xero import pipeline, trial_balance
    from intoaec_xero.quality import docs, reconcile
    validate.StreamValidator.check = lambda self, rows, labels: {}  # nothing held back
    reconcile.reconcile_tenant = lambda *a, **k: []
    trial_balance.fetch_with_journals = lambda *a, **k: None
    docs.publish = lambda *a, **k: None
    pipeline.record_results = lambda *a, **k: None
engine = db.create_db_engine(db_url)
db.upgrade(engine)
settings = XeroSettings.for_single_host(base_url, client_id="sandbox-client", client_secret="sandbox-secret",
                                        calls_per_minute=0)
store = TokenStore(engine, settings.connection_key, TokenCipher(Fernet.generate_key().decode()))
request = start_authorization(settings, "http://127.0.0.1:9/cb")
store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
client = XeroClient(settings, store, sleep=lambda s: None)
profiler = None
if profile and mode == "on-warm":
    import cProfile
    profiler = cProfile.Profile()
cpu0 = time.process_time()
started = time.perf_counter()
if profiler:
    profiler.enable()
summary = run_sync(client, settings, engine, RawStore(os.path.join(data_dir, "raw")), "bench-quality")
if profiler:
    profiler.disable()
    profiler.dump_stats(profile)
seconds = time.perf_counter() - started
from intoaec_xero import report
rows = sum(sum(c.values()) for c in report.row_counts(engine).values())
print(json.dumps({"mode": mode, "seconds": seconds, "cpu": time.process_time() - cpu0, "rows": rows,
                  "ok": summary.ok, "failures": summary.failures[:3], "calls": client.stats.calls,
                  "import_seconds": import_seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _database(backend: str, scratch: Path, n: int) -> str:
    return f"sqlite:///{scratch / f'q{n}.db'}" if backend == "sqlite" else fresh_database(f"intoaec_bench_quality_{n}")


def _drop(url: str) -> None:
    if url.startswith("postgresql"):
        drop_database(url.rsplit("/", 1)[1])


def measure(dataset: str, backend: str, repeat: int, seed: int = 1, profile: Path | None = None
            ) -> dict[str, list[dict]]:
    from xero_sandbox.testing import running_sandbox

    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as scratch:
        n = 0
        for _ in range(repeat):
            for mode in MODES:
                n += 1
                url = _database(backend, Path(scratch), n)
                data_dir = Path(scratch) / f"data{n}"
                # A fresh sandbox each time: a full sync of `large` spends most of a tenant's daily calls.
                stats = str(profile / f"{dataset}-{backend}-{n}-{mode}.prof") if profile else ""
                with running_sandbox(dataset=dataset, seed=seed, limits=False, startup_timeout=300) as sandbox:
                    done = subprocess.run([sys.executable, "-c", CHILD, mode, sandbox.base_url, url, str(data_dir),
                                           stats], capture_output=True, text=True)
                _drop(url)
                if done.returncode != 0:
                    raise SystemExit(f"{mode} sync failed:\n{done.stderr[-4000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if not result["ok"]:
                    raise SystemExit(f"{mode} sync reported failures: {result['failures']}")
                runs[mode].append(result)
                print(f"  {dataset}/{backend} {mode:8} {result['seconds']:7.1f} s wall, "
                      f"{result['cpu']:7.1f} s CPU, peak {result['peak_rss_mb']:.0f} MB", flush=True)
    return runs


def section(results: dict[tuple[str, str], dict[str, list[dict]]], kept: dict[tuple[str, str], str]) -> str:
    rows = dict(kept)
    for (dataset, backend), runs in results.items():
        med = {m: {k: statistics.median(r[k] for r in runs[m]) for k in ("seconds", "cpu", "import_seconds")}
               for m in MODES}
        off, warm, cold = med["off"], med["on-warm"], med["on-cold"]
        rows[(dataset, backend)] = (
            f"| {dataset} | {backend} | {runs['off'][0]['rows']:,} | {len(runs['off'])} | "
            f"{off['seconds']:.1f} s / {off['cpu']:.1f} s | {warm['seconds']:.1f} s / {warm['cpu']:.1f} s | "
            f"{cold['seconds']:.1f} s | **{100 * (warm['seconds'] / off['seconds'] - 1):+.0f}%** / "
            f"{100 * (warm['cpu'] / off['cpu'] - 1):+.0f}% | {100 * (cold['seconds'] / off['seconds'] - 1):+.0f}% | "
            f"{warm['import_seconds']:.1f} s | {datetime.now(UTC):%Y-%m-%d} |")
    lines = ["Measured by `python -m benchmarks.quality_overhead --dataset D --backend B`: a full sync of every "
             "tenant of the sandbox (seed 1, limits off) in one process, with the checks off and on, each in a "
             "fresh process and database, modes alternated, medians. Target: the checks add at most 20% to a full "
             "sync.", "",
             "| dataset | backend | rows | runs | off: wall / CPU | on (warm): wall / CPU | on (cold): wall | "
             "overhead warm (wall / CPU) | overhead cold (wall) | GX import + suites | measured |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += [rows[k] for k in sorted(rows)]
    lines += ["", "Wall time is what a sync takes; CPU time is the syncing process's own (the sandbox runs "
              "elsewhere), which background load on the machine disturbs less. \"Warm\" is the steady "
              "state of a worker that has imported Great Expectations and registered the suites before; "
              "\"cold\" adds that one-off setup to the first sync of a fresh process (each Airflow load task "
              "is one). \"Off\" leaves out exactly what the quality layer adds: the suites, the reconciliation "
              "and its trial balance call, dq_results and Data Docs.", ""]
    return "\n".join(lines)


def _kept_rows() -> dict[tuple[str, str], str]:
    """Rows of the table already in docs/benchmarks.md, so measuring one dataset keeps the others."""
    from benchmarks.report import BENCHMARKS_MD

    kept = {}
    if BENCHMARKS_MD.exists():
        text = BENCHMARKS_MD.read_text()
        if f"## {HEADING}" in text:
            body = text.split(f"## {HEADING}", 1)[1].split("\n## ", 1)[0]
            for line in body.splitlines():
                cells = [c.strip() for c in line.strip("|").split("|")]
                if line.startswith("| ") and len(cells) == 11 and cells[0] not in ("dataset", "---"):
                    kept[(cells[0], cells[1])] = line
    return kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", action="append", help="medium (default), large; repeatable")
    parser.add_argument("--backend", action="append", help="sqlite (default), postgresql; repeatable")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile each warm sync (cProfile) into DIR; the docs are left alone")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = {}
    for dataset in args.dataset or ["medium"]:
        for backend in args.backend or ["sqlite"]:
            print(f"{dataset} into {backend} ...", flush=True)
            results[(dataset, backend)] = measure(dataset, backend, args.repeat, profile=args.profile)
    body = section(results, _kept_rows())
    if not args.profile:
        write_section(HEADING, body)
    print(body)


if __name__ == "__main__":
    main()
