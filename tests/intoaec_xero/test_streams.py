import pytest
from intoaec_xero.schema import metadata
from intoaec_xero.settings import DEFAULT_SCOPES
from intoaec_xero.streams import STREAMS, Paging, get_stream
from intoaec_xero.transform import TRANSFORMS

COST_STREAMS = ("bank_transactions", "manual_journals", "purchase_orders", "overpayments", "prepayments",
                "linked_transactions")


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
        assert params.get("page_size") == (1000 if stream.sized_pages else None), stream.name
    # LinkedTransactions take no pageSize (Xero serves 100 a page): the SDK would refuse one.
    assert [s.name for s in paged if not s.sized_pages] == ["linked_transactions"]


def test_every_request_param_is_one_the_sdk_method_takes():
    import inspect

    from xero_python.accounting import AccountingApi

    for stream in STREAMS.values():
        taken = inspect.signature(getattr(AccountingApi, stream.sdk_method)).parameters
        for params in (stream.request_params(page=2, offset=5, if_modified_since="2024-01-01T00:00:00"),
                       stream.request_params()):
            assert set(params) <= set(taken), (stream.name, set(params) - set(taken))


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


def test_every_request_that_can_have_four_decimal_unit_amounts_asks_for_them():
    """Without unitdp=4 Xero rounds unit amounts to 2 places; any stream whose SDK method takes it sends it."""
    import inspect

    from xero_python.accounting import AccountingApi

    takes_unitdp = {name for name, stream in STREAMS.items()
                    if "unitdp" in inspect.signature(getattr(AccountingApi, stream.sdk_method)).parameters}
    assert takes_unitdp >= {"invoices", "credit_notes"}
    for name, stream in STREAMS.items():
        for params in (stream.request_params(), stream.request_params(page=2, if_modified_since="2024-01-01")):
            assert params.get("unitdp") == (4 if name in takes_unitdp else None), name


def test_the_sdk_puts_unitdp_on_the_wire():
    """What client.get passes reaches the query string (the SDK drops parameters it does not know)."""
    from unittest import mock

    from xero_python.accounting import AccountingApi

    api = AccountingApi(mock.MagicMock())
    for name in ("invoices", "credit_notes"):
        stream = get_stream(name)
        getattr(api, stream.sdk_method)("tenant", _preload_content=False, **stream.request_params(page=1))
        url, method, _path, query_params, *_ = api.api_client.call_api.call_args.args
        query = dict(query_params)
        assert method == "GET" and url.endswith(stream.path)
        assert query["unitdp"] == 4 and query["page"] == 1, name


def test_streams_with_lines_carry_their_lines_and_projects():
    import inspect

    assert get_stream("invoices").targets == ("invoices", "invoice_lines")
    assert get_stream("credit_notes").targets == ("credit_notes", "credit_note_lines")
    for stream in STREAMS.values():
        if stream.project_lines:
            assert "projects" in inspect.signature(TRANSFORMS[stream.name]).parameters, stream.name
            assert any("project" in metadata.tables[t].columns for t in stream.targets), stream.name
    assert {s.name for s in STREAMS.values() if s.project_lines} == {
        "invoices", "credit_notes", "journals", "bank_transactions", "manual_journals", "purchase_orders"}


def test_the_cost_streams_land_in_their_tables():
    assert {name: s.targets for name, s in STREAMS.items() if name in COST_STREAMS} == {
        "bank_transactions": ("bank_transactions", "bank_transaction_lines"),
        "manual_journals": ("manual_journals", "manual_journal_lines"),
        "purchase_orders": ("purchase_orders", "purchase_order_lines"),
        "overpayments": ("overpayments", "overpayment_allocations"),
        "prepayments": ("prepayments", "prepayment_allocations"),
        "linked_transactions": ("linked_transactions",),
    }
    from intoaec_xero.load import CHILD_OF

    for name in COST_STREAMS:
        for child in STREAMS[name].targets[1:]:  # replaced whole when their parent comes back
            assert CHILD_OF[child][1] == STREAMS[name].targets[0], child
    # Incremental where Xero allows it; LinkedTransactions have no If-Modified-Since and are read whole.
    assert {name for name in COST_STREAMS if STREAMS[name].supports_if_modified_since} == set(COST_STREAMS) - {
        "linked_transactions"}
    assert STREAMS["linked_transactions"].cursor is None


def test_every_stream_declares_the_granular_scope_it_needs():
    assert {name: s.scope for name, s in STREAMS.items()} == {
        "accounts": "accounting.settings.read",
        "tracking_categories": "accounting.settings.read",
        "contacts": "accounting.contacts.read",
        "invoices": "accounting.invoices.read",
        "credit_notes": "accounting.invoices.read",
        "payments": "accounting.payments.read",
        "journals": "accounting.journals.read",
        "bank_transactions": "accounting.banktransactions.read",
        "manual_journals": "accounting.manualjournals.read",
        "purchase_orders": "accounting.invoices.read",
        "linked_transactions": "accounting.invoices.read",
        "overpayments": "accounting.payments.read",
        "prepayments": "accounting.payments.read",
    }
    # Asked for by default, so a new connection can read every stream.
    assert {s.scope for s in STREAMS.values()} <= set(DEFAULT_SCOPES)
    # A grant of an app from before the granular scopes (accounting.transactions.read) reads the same streams.
    assert get_stream("bank_transactions").granting_scopes == {
        "accounting.banktransactions.read", "accounting.banktransactions", "accounting.transactions",
        "accounting.transactions.read"}
    assert get_stream("contacts").granting_scopes == {"accounting.contacts.read", "accounting.contacts"}


def test_the_sandbox_asks_the_scopes_the_streams_declare():
    """The scope each stream declares is the one the sandbox (standing in for Xero) checks for its endpoint."""
    from xero_sandbox.accounting import RESOURCES

    for stream in STREAMS.values():
        _name, accepted = RESOURCES[stream.path.strip("/").lower()]
        assert stream.scope in accepted, stream.name
        assert accepted <= stream.granting_scopes, stream.name


def test_the_sdk_puts_unitdp_and_page_size_on_the_wire_for_the_cost_streams():
    from unittest import mock

    from xero_python.accounting import AccountingApi

    api = AccountingApi(mock.MagicMock())
    for name in COST_STREAMS:
        stream = get_stream(name)
        getattr(api, stream.sdk_method)("tenant", _preload_content=False,
                                        **stream.request_params(page=1, if_modified_since="2024-01-02T03:04:05"))
        url, method, _path, query_params, headers, *_ = api.api_client.call_api.call_args.args
        query = dict(query_params)
        assert method == "GET" and url.endswith(stream.path) and query["page"] == 1, name
        assert query.get("unitdp") == (4 if name in ("bank_transactions", "overpayments", "prepayments") else None)
        assert query.get("pageSize") == (None if name == "linked_transactions" else 1000), name
        assert headers.get("If-Modified-Since") == (None if name == "linked_transactions"
                                                    else "2024-01-02T03:04:05"), name
