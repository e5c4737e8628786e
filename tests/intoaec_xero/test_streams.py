import pytest
from intoaec_xero.schema import metadata
from intoaec_xero.streams import STREAMS, Paging, get_stream
from intoaec_xero.transform import TRANSFORMS


def test_every_stream_is_wired_to_a_transform_and_real_tables():
    for name, stream in STREAMS.items():
        assert name in TRANSFORMS, name
        for table in stream.targets:
            assert table in metadata.tables, (name, table)
            assert "tenant_id" in metadata.tables[table].primary_key.columns


def test_every_stream_names_a_real_sdk_method():
    from xero_python.accounting import AccountingApi

    for stream in STREAMS.values():
        assert callable(getattr(AccountingApi, stream.sdk_method)), stream.sdk_method


def test_paged_streams_ask_for_the_largest_page_xero_allows():
    paged = [s for s in STREAMS.values() if s.paging is Paging.PAGE]
    assert paged
    for stream in paged:
        params = stream.request_params(page=3)
        assert params["page"] == 3
        assert params["page_size"] == 1000


def test_if_modified_since_only_where_the_endpoint_supports_it():
    for stream in STREAMS.values():
        params = stream.request_params(if_modified_since="2024-01-01T00:00:00")
        assert ("if_modified_since" in params) == stream.supports_if_modified_since


def test_archived_records_are_requested():
    assert get_stream("contacts").request_params()["include_archived"] == "true"
    assert get_stream("invoices").request_params()["include_archived"] == "true"


def test_unknown_stream_is_a_clear_error():
    with pytest.raises(KeyError, match="Unknown stream 'bogus'"):
        get_stream("bogus")
