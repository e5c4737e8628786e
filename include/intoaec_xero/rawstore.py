"""Raw pages as Xero sent them, kept per run so transform, validation and load can be replayed
without spending API quota.

Layout: ``<root>/<run>/<tenant_id>/<stream>/page-000001.json.gz``. A page is written to a
temporary name and renamed, so a crash never leaves a half page that looks complete.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: str) -> str:
    """Airflow run ids contain ':' and '+'; keep paths portable."""
    return _UNSAFE.sub("_", value).strip("_") or "run"


def read_page(path: Path) -> bytes:
    """A kept page's bytes. Raises OSError, EOFError or zlib.error when the file is damaged."""
    data = path.read_bytes()
    # wbits=31: a gzip member, its CRC and length checked by zlib itself.
    decompressor = zlib.decompressobj(wbits=31)
    body = decompressor.decompress(data)
    if not decompressor.eof:
        raise EOFError("the compressed page ends before its end-of-stream marker")
    if decompressor.unused_data.lstrip(b"\x00"):
        return gzip.decompress(data)  # more than one member: not written here, but still gzip
    return body


class RawStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def stream_dir(self, run_id: str, tenant_id: str, stream: str) -> Path:
        return self.root / safe_name(run_id) / safe_name(tenant_id) / safe_name(stream)

    def reset(self, run_id: str, tenant_id: str, stream: str) -> Path:
        """Start a stream's pages afresh (a retried extract must not mix with the last try)."""
        directory = self.stream_dir(run_id, tenant_id, stream)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def write_page(self, run_id: str, tenant_id: str, stream: str, number: int, body: bytes) -> Path:
        directory = self.stream_dir(run_id, tenant_id, stream)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"page-{number:06d}.json.gz"
        partial = final.with_suffix(".partial")
        # One call, not a streamed GzipFile: pages are a few MB and this is the sync's hot path.
        partial.write_bytes(gzip.compress(body, compresslevel=1, mtime=0))
        os.replace(partial, final)
        return final

    def page_paths(self, run_id: str, tenant_id: str, stream: str) -> list[Path]:
        return sorted(self.stream_dir(run_id, tenant_id, stream).glob("page-*.json.gz"))

    def pages(self, run_id: str, tenant_id: str, stream: str) -> Iterator[bytes]:
        for path in self.page_paths(run_id, tenant_id, stream):
            yield read_page(path)

    def page_count(self, run_id: str, tenant_id: str, stream: str) -> int:
        return len(list(self.stream_dir(run_id, tenant_id, stream).glob("page-*.json.gz")))

    def write_manifest(self, run_id: str, tenant_id: str, manifest: dict) -> Path:
        """What the extract produced, so the run can be replayed without the API."""
        import json

        directory = self.root / safe_name(run_id) / safe_name(tenant_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / "manifest.json"
        partial = final.with_suffix(".partial")
        partial.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(partial, final)
        return final

    def manifest(self, run_id: str, tenant_id: str) -> dict | None:
        """The manifest an earlier try of this run wrote for the tenant, if any."""
        import json

        path = self.root / safe_name(run_id) / safe_name(tenant_id) / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def manifests(self, run_id: str) -> list[dict]:
        import json

        run_dir = self.root / safe_name(run_id)
        return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/manifest.json"))]

    def runs(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else []
