"""Kept raw pages: plain gzip on disk, read back whole or reported as damaged."""

from __future__ import annotations

import gc
import gzip
import zlib

import pytest
from intoaec_xero import collector
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
        before = sum(isinstance(o, Node) for o in gc.get_objects(generation=0))
        collector.collect_young()
        after = sum(isinstance(o, Node) for o in gc.get_objects())
    assert before == 1 and after == 0
