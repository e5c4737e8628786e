"""Raw pages as Xero sent them, kept per connection and run so transform, validation and load can be
replayed without spending API quota.

Layout: ``<root>/<connection>/<run>/<tenant_id>/<stream>/page-000001.json.gz``. Pages are kept per
Xero connection, so two connections that reach the same organisation never share a directory or
reset each other's pages. A page is written to a temporary name and renamed, so a crash never
leaves a half page that looks complete.

Every path component comes from outside (an Airflow run id, a connection id, Xero's tenant id),
so none is trusted: ``''``, ``.`` and ``..`` are refused, anything other than letters, digits and
``-._~`` is percent-encoded (one component, never a separator, and two different values never
share a name), and every path must resolve inside the root before anything is read, written or
removed.

Runs kept before pages were kept per connection sit at ``<root>/<run>/<tenant_id>/…``; they are
still read (a load whose extract ran before, a replay, a quarantine release) and never written or
removed.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

from intoaec_xero.errors import ConfigurationError
from intoaec_xero.payloads import Manifest
from intoaec_xero.settings import DEFAULT_CONNECTION_KEY

# Longest file name Linux and macOS file systems take, in bytes.
_MAX_NAME = 255
_REFUSED = ("", ".", "..")

# The names runs and tenants were kept under before pages were kept per connection (read only).
_LEGACY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def path_component(value: str) -> str | None:
    """``value`` as one directory name, or None when it cannot be one.

    Percent-encoding keeps Airflow's run ids (``scheduled__2026-01-01T00:00:00+00:00``) readable,
    turns separators into text, and is reversible, so distinct values get distinct names.
    """
    if not isinstance(value, str) or value in _REFUSED:
        return None
    name = quote(value, safe="")
    if len(name.encode()) > _MAX_NAME or name in _REFUSED or "/" in name or os.sep in name:
        return None
    return name


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
    """The raw pages one Xero connection keeps under ``root``."""

    def __init__(self, root: str | os.PathLike[str], connection_key: str = DEFAULT_CONNECTION_KEY):
        self.root = Path(root)
        self.connection_key = connection_key
        name = path_component(connection_key)
        if name is None:
            raise ConfigurationError(
                f"Raw pages cannot be kept for the Xero connection {connection_key!r}: its id is not usable as a "
                f"directory name ('', '.' and '..' are refused, and it must encode to at most {_MAX_NAME} bytes).")
        # This connection's own directory: everything it writes or removes stays inside it.
        self.directory = self.root / name

    def for_connection(self, connection_key: str) -> RawStore:
        return RawStore(self.root, connection_key)

    @classmethod
    def for_manifest(cls, root: str | os.PathLike[str], manifest: Manifest) -> RawStore:
        """The store an extract kept this manifest's pages in (manifests written before pages were
        kept per connection name none; their pages are found where they were kept)."""
        return cls(root, manifest.get("connection_key") or DEFAULT_CONNECTION_KEY)

    # -- paths ------------------------------------------------------------------------------

    def run_dir(self, run_id: str, tenant_id: str | None = None) -> Path:
        """This connection's directory for a run; a run id that cannot be one is refused here."""
        return self._inside(self.directory / self._name(run_id, "run id", tenant_id), tenant_id, own=True)

    def stream_dir(self, run_id: str, tenant_id: str, stream: str, *, writing: bool = False) -> Path:
        """Where the stream's pages of the run are kept. ``writing``: where this connection writes
        them, never a run of the older layout."""
        tenant_dir = self._tenant_dir(run_id, tenant_id) if writing else self._kept_tenant_dir(run_id, tenant_id)
        return self._inside(tenant_dir / self._name(stream, "stream", tenant_id), tenant_id,
                            own=tenant_dir.is_relative_to(self.directory))

    def _tenant_dir(self, run_id: str, tenant_id: str) -> Path:
        """Where this connection writes the tenant's pages of the run."""
        return self._inside(self.run_dir(run_id, tenant_id) / self._name(tenant_id, "tenant id", tenant_id),
                            tenant_id, own=True)

    def _kept_tenant_dir(self, run_id: str, tenant_id: str) -> Path:
        """The tenant's pages of the run as kept: this connection's, else a run of the older layout.

        Decided per tenant: a load of an extract that ran before the change reads the old layout
        even when another tenant of the same run already writes the new one.
        """
        own = self._tenant_dir(run_id, tenant_id)
        if own.exists():
            return own
        legacy = self._legacy_run_dir(run_id)
        if legacy is not None:
            tenant = _legacy_name(tenant_id)
            candidate = legacy / tenant
            if tenant not in _REFUSED and candidate.is_dir() and (
                    (candidate / "manifest.json").is_file() or any(candidate.glob("*/page-*.json.gz"))):
                return self._inside(candidate, tenant_id, own=False)
        return own

    def _legacy_run_dir(self, run_id: str) -> Path | None:
        name = _legacy_name(run_id)
        candidate = self.root / name
        if name in _REFUSED or not candidate.is_dir():
            return None
        return self._inside(candidate, None, own=False)

    def _name(self, value: str, what: str, tenant_id: str | None) -> str:
        name = path_component(value)
        if name is None:
            raise ConfigurationError(
                f"Raw pages of the Xero connection '{self.connection_key}'{_for_tenant(tenant_id)} cannot be kept "
                f"under the {what} {value!r}: it is not usable as a directory name ('', '.' and '..' are refused, "
                f"and it must encode to at most {_MAX_NAME} bytes).")
        return name

    def _inside(self, path: Path, tenant_id: str | None, *, own: bool) -> Path:
        """``path`` if it resolves strictly inside the root and, for this connection's own pages,
        inside its directory: a symlink must not lead to another connection's pages or elsewhere."""
        resolved = path.resolve()
        for base in (self.root, self.directory) if own else (self.root,):
            limit = base.resolve()
            if resolved == limit or not resolved.is_relative_to(limit):
                raise ConfigurationError(
                    f"Raw pages of the Xero connection '{self.connection_key}'{_for_tenant(tenant_id)} would be "
                    f"kept at {path}, which resolves to {resolved}, outside {base}; nothing was read, written or "
                    "removed there.")
        return path

    # -- writing ----------------------------------------------------------------------------

    def reset(self, run_id: str, tenant_id: str, stream: str) -> Path:
        """Start a stream's pages afresh (a retried extract must not mix with the last try)."""
        directory = self.stream_dir(run_id, tenant_id, stream, writing=True)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def write_page(self, run_id: str, tenant_id: str, stream: str, number: int, body: bytes) -> Path:
        directory = self.stream_dir(run_id, tenant_id, stream, writing=True)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"page-{number:06d}.json.gz"
        partial = final.with_suffix(".partial")
        # One call, not a streamed GzipFile: pages are a few MB and this is the sync's hot path.
        partial.write_bytes(gzip.compress(body, compresslevel=1, mtime=0))
        os.replace(partial, final)
        return final

    def write_manifest(self, run_id: str, tenant_id: str, manifest: Manifest) -> Path:
        """What the extract produced, so the run can be replayed without the API."""
        directory = self._tenant_dir(run_id, tenant_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / "manifest.json"
        partial = final.with_suffix(".partial")
        partial.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(partial, final)
        return final

    # -- reading ----------------------------------------------------------------------------

    def page_paths(self, run_id: str, tenant_id: str, stream: str) -> list[Path]:
        return sorted(self.stream_dir(run_id, tenant_id, stream).glob("page-*.json.gz"))

    def pages(self, run_id: str, tenant_id: str, stream: str) -> Iterator[bytes]:
        for path in self.page_paths(run_id, tenant_id, stream):
            yield read_page(path)

    def page_count(self, run_id: str, tenant_id: str, stream: str) -> int:
        return len(self.page_paths(run_id, tenant_id, stream))

    def manifest(self, run_id: str, tenant_id: str) -> Manifest | None:
        """The manifest an earlier try of this run wrote for the tenant, if any.

        This connection's own only: a retry resumes from it and then writes beside it, so pages of
        an older layout must not count as already extracted.
        """
        path = self._tenant_dir(run_id, tenant_id) / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def manifests(self, run_id: str) -> list[Manifest]:
        """Every tenant's manifest of the run, this connection's first, then any of the older layout."""
        found: dict[str, Manifest] = {}
        for path in sorted(self.run_dir(run_id).glob("*/manifest.json")):
            manifest = json.loads(path.read_text())
            found.setdefault(manifest.get("tenant_id", path.parent.name), manifest)
        legacy = self._legacy_run_dir(run_id)
        if legacy is not None:
            for path in sorted(legacy.glob("*/manifest.json")):
                manifest = json.loads(path.read_text())
                found.setdefault(manifest.get("tenant_id", path.parent.name), manifest)
        return list(found.values())

    def holding(self, run_id: str, tenant_id: str) -> RawStore | None:
        """The store that kept the tenant's manifest of this run: this connection's, another
        connection's (the organisation moved since), or None when the run is no longer kept."""
        if (self._kept_tenant_dir(run_id, tenant_id) / "manifest.json").is_file():
            return self
        run, tenant = self._name(run_id, "run id", tenant_id), self._name(tenant_id, "tenant id", tenant_id)
        for path in sorted(self.root.glob(f"*/{run}/{tenant}/manifest.json")):
            name = path.parents[2].name
            if path_component(unquote(name)) == name:  # a directory this store names, not one put there by hand
                return self.for_connection(unquote(name))
        return None

    def runs(self) -> list[str]:
        """The run ids this connection kept pages of."""
        if not self.directory.is_dir():
            return []
        return sorted(unquote(p.name) for p in self.directory.iterdir() if p.is_dir())


def _legacy_name(value: str) -> str:
    return _LEGACY_UNSAFE.sub("_", value).strip("_") or "run"


def _for_tenant(tenant_id: str | None) -> str:
    return f" for tenant {tenant_id!r}" if tenant_id else ""


def kept_pages(raw: RawStore, run_id: str, tenant_id: str, stream: str) -> Iterator[tuple[int, bytes | Exception]]:
    """Each kept page, or the error reading it: a damaged file is a finding for the checks, not a crash."""
    for number, path in enumerate(raw.page_paths(run_id, tenant_id, stream), start=1):
        try:
            yield number, read_page(path)
        except (OSError, EOFError, zlib.error) as error:
            yield number, error
