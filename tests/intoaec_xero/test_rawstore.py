"""Kept raw pages: plain gzip on disk, read back whole or reported as damaged, kept per connection
and never anywhere but under the raw root."""

from __future__ import annotations

import gc
import gzip
import json
import zlib

import pytest
from intoaec_xero import collector
from intoaec_xero.errors import ConfigurationError
from intoaec_xero.rawstore import RawStore, read_page

BODY = b'{"Invoices": [' + b",".join(b'{"InvoiceID": "%d", "Total": 1.5}' % i for i in range(2000)) + b"]}"


def test_a_page_is_plain_gzip_and_reads_back_exactly(tmp_path):
    raw = RawStore(tmp_path)
    path = raw.write_page("run:1", "tenant", "invoices", 3, BODY)
    assert path.name == "page-000003.json.gz"
    assert not list(path.parent.glob("*.partial"))
    with gzip.open(path, "rb") as handle:  # any gzip tool reads it
        assert handle.read() == BODY
    assert read_page(path) == BODY
    assert list(raw.pages("run:1", "tenant", "invoices")) == [BODY]


def test_a_page_of_several_gzip_members_reads_whole(tmp_path):
    path = tmp_path / "page-000001.json.gz"
    path.write_bytes(gzip.compress(BODY[:100]) + gzip.compress(BODY[100:]))
    assert read_page(path) == BODY


@pytest.mark.parametrize("damage, error", [
    (lambda data: data[: len(data) // 2], EOFError),            # cut off mid-stream
    (lambda data: data[:-8] + b"\0\0\0\0" + data[-4:], zlib.error),  # wrong checksum
    (lambda data: b"not gzip at all", zlib.error),
])
def test_a_damaged_page_raises_instead_of_returning_part_of_it(tmp_path, damage, error):
    path = tmp_path / "page-000001.json.gz"
    path.write_bytes(damage(gzip.compress(BODY)))
    with pytest.raises(error):
        read_page(path)


def test_the_collector_pause_nests_and_restores():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost resumes
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_young_cycles_are_collected_while_paused():
    class Node:
        pass

    with collector.paused():
        node = Node()
        node.self = node
        del node
        # type(), not isinstance(): that asks every object for __class__, which lazy proxies that
        # imported libraries leave behind answer by importing a module.
        before = sum(type(o) is Node for o in gc.get_objects(generation=0))
        collector.collect_young()
        after = sum(type(o) is Node for o in gc.get_objects())
    assert before == 1 and after == 0


# -- where pages are kept: every component checked, every path inside the root ------------------

TENANT = "0b8d4c1e-2f3a-4b5c-9d6e-7f8091a2b3c4"


def _files(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _plant(tmp_path):
    """A raw root with pages of its own and files beside it, at every place a bad name could reach."""
    data = tmp_path / "data"
    root = data / "raw"
    planted = [
        data / "sibling.txt",                                   # next to the root
        data / TENANT / "invoices" / "page-000001.json.gz",      # <root>/../<tenant>/<stream>: the old escape
        data / "invoices" / "page-000001.json.gz",
        root / TENANT / "invoices" / "page-000001.json.gz",      # <root>/<connection>/../<tenant>/<stream>
        root / "xero_default" / TENANT / "invoices" / "page-000001.json.gz",  # <connection>/./<tenant>/…
        root / "xero_default" / "kept-run" / TENANT / "invoices" / "page-000001.json.gz",
        root / "xero_other" / "kept-run" / TENANT / "invoices" / "page-000001.json.gz",
    ]
    for number, path in enumerate(planted):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"planted %d" % number)
    return data, root


@pytest.mark.parametrize("bad", ["..", ".", ""])
@pytest.mark.parametrize("where", ["run id", "tenant id", "stream"])
def test_a_bad_name_is_refused_and_reset_deletes_nothing(tmp_path, bad, where):
    data, root = _plant(tmp_path)
    before = _files(data)
    raw = RawStore(root)
    args = {"run id": (bad, TENANT, "invoices"), "tenant id": ("kept-run", bad, "invoices"),
            "stream": ("kept-run", TENANT, bad)}[where]
    for call in (lambda: raw.reset(*args), lambda: raw.write_page(*args, 1, BODY), lambda: raw.page_paths(*args)):
        with pytest.raises(ConfigurationError, match=f"connection 'xero_default'.*the {where} '{bad}'"):
            call()
    assert _files(data) == before  # nothing removed, nothing added, anywhere


def test_the_error_names_the_connection_and_the_tenant(tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        RawStore(tmp_path, "xero_other").reset("..", TENANT, "invoices")
    assert str(refused.value).startswith(f"Raw pages of the Xero connection 'xero_other' for tenant '{TENANT}' "
                                         "cannot be kept under the run id '..'")


@pytest.mark.parametrize("bad", ["..", ".", ""])
def test_a_connection_id_that_cannot_name_a_directory_is_refused(tmp_path, bad):
    data, root = _plant(tmp_path)
    before = _files(data)
    with pytest.raises(ConfigurationError, match=f"Xero connection '{bad}': its id is not usable"):
        RawStore(root, bad)
    assert _files(data) == before


def test_separators_and_other_characters_stay_inside_one_name(tmp_path):
    root = tmp_path / "raw"
    raw = RawStore(root, "team/xero")
    path = raw.write_page("../../escape", "a/../b", "invoices", 1, BODY)
    assert path.relative_to(root).parts == ("team%2Fxero", "..%2F..%2Fescape", "a%2F..%2Fb", "invoices",
                                            "page-000001.json.gz")
    raw.reset("../../escape", "a/../b", "invoices")
    assert list(raw.pages("../../escape", "a/../b", "invoices")) == []
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]
    assert raw.runs() == ["../../escape"]


def test_airflow_run_ids_keep_a_readable_name_and_come_back_whole(tmp_path):
    raw = RawStore(tmp_path)
    run_id = "scheduled__2026-01-01T00:00:00+00:00"
    path = raw.write_page(run_id, TENANT, "invoices", 1, BODY)
    assert path.parts[-4] == "scheduled__2026-01-01T00%3A00%3A00%2B00%3A00"
    assert raw.runs() == [run_id]


def test_different_run_ids_never_share_a_directory(tmp_path):
    # The older mapping turned all of these into "a_b": one run's reset removed the others' pages.
    raw = RawStore(tmp_path)
    run_ids = ["a:b", "a_b", "a+b", "a b", "a%3Ab", "a/b"]
    for number, run_id in enumerate(run_ids):
        raw.write_page(run_id, TENANT, "invoices", 1, b"run %d" % number)
    raw.reset("a:b", TENANT, "invoices")
    assert [list(raw.pages(r, TENANT, "invoices")) for r in run_ids] == [
        [], [b"run 1"], [b"run 2"], [b"run 3"], [b"run 4"], [b"run 5"]]
    assert sorted(raw.runs()) == sorted(run_ids)


def test_a_symlink_out_of_the_root_is_refused_before_anything_is_removed(tmp_path):
    outside = tmp_path / "outside"
    page = outside / TENANT / "invoices" / "page-000001.json.gz"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"not the raw store's")
    root = tmp_path / "raw"
    (root / "xero_default").mkdir(parents=True)
    (root / "xero_default" / "run").symlink_to(outside, target_is_directory=True)
    raw = RawStore(root)
    with pytest.raises(ConfigurationError, match="outside"):
        raw.reset("run", TENANT, "invoices")
    with pytest.raises(ConfigurationError, match="outside"):
        raw.write_page("run", TENANT, "invoices", 2, BODY)
    assert page.read_bytes() == b"not the raw store's"
    assert [p.name for p in page.parent.iterdir()] == ["page-000001.json.gz"]


def test_a_symlink_into_another_connections_pages_is_refused(tmp_path):
    root = tmp_path / "raw"
    first = RawStore(root, "xero_default")
    first.write_page("run", TENANT, "invoices", 1, BODY)
    (root / "xero_other" / "run").mkdir(parents=True)
    (root / "xero_other" / "run" / TENANT).symlink_to(first.run_dir("run") / TENANT, target_is_directory=True)
    with pytest.raises(ConfigurationError, match="connection 'xero_other'.*outside"):
        RawStore(root, "xero_other").reset("run", TENANT, "invoices")
    assert list(first.pages("run", TENANT, "invoices")) == [BODY]


def test_two_connections_reaching_one_tenant_never_touch_each_others_pages(tmp_path):
    first, second = RawStore(tmp_path, "xero_default"), RawStore(tmp_path, "xero_other")
    run_id = "scheduled__2026-01-01T00:00:00+00:00"
    for store, body in ((first, b"first's"), (second, b"second's")):
        store.reset(run_id, TENANT, "invoices")
        store.write_page(run_id, TENANT, "invoices", 1, body)
        store.write_manifest(run_id, TENANT, {"tenant_id": TENANT, "connection_key": store.connection_key})
    second.reset(run_id, TENANT, "invoices")  # a retried extract of the second connection
    second.write_page(run_id, TENANT, "invoices", 1, b"second's retry")
    assert list(first.pages(run_id, TENANT, "invoices")) == [b"first's"]
    assert list(second.pages(run_id, TENANT, "invoices")) == [b"second's retry"]
    assert [m["connection_key"] for m in first.manifests(run_id)] == ["xero_default"]
    assert [m["connection_key"] for m in second.manifests(run_id)] == ["xero_other"]
    assert first.manifest(run_id, TENANT)["connection_key"] == "xero_default"
    assert RawStore.for_manifest(tmp_path, second.manifest(run_id, TENANT)).directory == second.directory
    assert RawStore.for_manifest(tmp_path, {"tenant_id": TENANT}).directory == first.directory


def test_holding_finds_the_connection_that_kept_a_tenants_run(tmp_path):
    other = RawStore(tmp_path, "xero_other")
    other.write_manifest("run-1", TENANT, {"tenant_id": TENANT, "connection_key": "xero_other"})
    found = RawStore(tmp_path).holding("run-1", TENANT)
    assert found is not None and found.connection_key == "xero_other"
    assert RawStore(tmp_path).holding("run-2", TENANT) is None


def test_runs_kept_before_pages_were_per_connection_are_read_but_never_removed(tmp_path):
    run_id = "scheduled__2026-01-01T00:00:00+00:00"
    legacy = tmp_path / "scheduled__2026-01-01T00_00_00_00_00" / TENANT  # the older layout's names
    (legacy / "invoices").mkdir(parents=True)
    (legacy / "invoices" / "page-000001.json.gz").write_bytes(gzip.compress(BODY))
    manifest = {"run_id": run_id, "tenant_id": TENANT, "tenant_name": "Acme", "streams": []}
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    raw = RawStore(tmp_path)
    assert list(raw.pages(run_id, TENANT, "invoices")) == [BODY]  # a load or replay of that run
    assert raw.manifests(run_id) == [manifest]
    assert raw.holding(run_id, TENANT) is raw
    assert raw.manifest(run_id, TENANT) is None  # a retry re-extracts instead of resuming from it
    raw.reset(run_id, TENANT, "invoices")  # the retry writes the new layout only
    raw.write_page(run_id, TENANT, "invoices", 1, b"new")
    assert list(raw.pages(run_id, TENANT, "invoices")) == [b"new"]
    assert gzip.decompress((legacy / "invoices" / "page-000001.json.gz").read_bytes()) == BODY
