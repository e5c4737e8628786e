"""Each benchmark owns one ``## heading`` of docs/benchmarks.md and rewrites only that section."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PREAMBLE = (
    "# Benchmarks\n\nMeasured by `make bench` on the development machine (2 cores, 24 GiB). "
    "Each section is rewritten by the benchmark that owns it; the date says when it last ran.\n"
)


def write_section(heading: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else PREAMBLE
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
