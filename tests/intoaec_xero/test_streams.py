import pytest
from intoaec_xero.schema import metadata
from intoaec_xero.settings import DEFAULT_SCOPES
from intoaec_xero.streams import STREAMS, Paging, get_stream
from intoaec_xero.transform import TRANSFORMS
from sqlalchemy import select

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
        "organisation": "accounting.settings.read",
        "tax_rates": "accounting.settings.read",
        "bank_transfers": "accounting.banktransactions.read",
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


# -- the settings and transfers the derived ledger needs: the organisation, its tax rates, its bank transfers ---

def test_the_organisation_tax_rates_and_bank_transfers_are_declared_like_the_others():
    assert list(STREAMS).index("organisation") < list(STREAMS).index("tax_rates") < list(STREAMS).index("contacts")
    assert list(STREAMS).index("bank_transfers") == list(STREAMS).index("bank_transactions") + 1
    declared = {name: (s.path, s.sdk_method, s.records_key, s.primary_key, s.paging, s.targets, s.cursor,
                       s.supports_if_modified_since)
                for name, s in STREAMS.items() if name in ("organisation", "tax_rates", "bank_transfers")}
    assert declared == {
        "organisation": ("/Organisation", "get_organisations", "Organisations", "OrganisationID", Paging.NONE,
                         ("organisations",), None, False),
        "tax_rates": ("/TaxRates", "get_tax_rates", "TaxRates", "TaxType", Paging.NONE, ("tax_rates",), None, False),
        # Transfers have no UpdatedDateUTC: the newest CreatedDateUTC is the watermark.
        "bank_transfers": ("/BankTransfers", "get_bank_transfers", "BankTransfers", "BankTransferID", Paging.NONE,
                           ("bank_transfers",), "CreatedDateUTC", True),
    }
    # A grant of an app from before the granular scopes reads transfers as it reads bank transactions.
    assert get_stream("bank_transfers").granting_scopes == get_stream("bank_transactions").granting_scopes
    assert get_stream("tax_rates").granting_scopes == {"accounting.settings.read", "accounting.settings"}


@pytest.mark.parametrize("name, expected", [
    ("organisation", {}),
    ("tax_rates", {}),
    # Deleted transfers are asked for, so one deleted after a sync does not stay.
    ("bank_transfers", {"include_deleted": "true", "if_modified_since": "2024-01-02T03:04:05"}),
])
def test_the_unpaged_streams_ask_once_and_send_if_modified_since_only_where_xero_takes_it(name, expected):
    stream = get_stream(name)
    # Whatever page or offset the engine passes, one call without either: Xero does not page these.
    assert stream.request_params(page=1, offset=5, if_modified_since="2024-01-02T03:04:05") == expected
    assert stream.request_params() == {k: v for k, v in expected.items() if k != "if_modified_since"}


def test_the_sdk_sends_the_unpaged_streams_as_xero_documents_them():
    from unittest import mock

    from xero_python.accounting import AccountingApi

    api = AccountingApi(mock.MagicMock())
    for name in ("organisation", "tax_rates", "bank_transfers"):
        stream = get_stream(name)
        getattr(api, stream.sdk_method)("tenant", _preload_content=False,
                                        **stream.request_params(page=1, if_modified_since="2024-01-02T03:04:05"))
        url, method, _path, query_params, headers, *_ = api.api_client.call_api.call_args.args
        assert method == "GET" and url.endswith(stream.path), name
        # No page, no pageSize; transfers ask for the deleted ones too.
        assert dict(query_params) == ({"includeDeleted": "true"} if name == "bank_transfers" else {}), name
        assert headers.get("If-Modified-Since") == ("2024-01-02T03:04:05" if name == "bank_transfers" else None), name


ORGANISATION = {"OrganisationID": "org-1", "Name": "Harbour Design", "LegalName": "Harbour Design Ltd",
                "BaseCurrency": "NZD", "CountryCode": "NZ", "FinancialYearEndDay": 31, "FinancialYearEndMonth": 3,
                "Class": "PREMIUM", "Timezone": "NEWZEALANDSTANDARDTIME", "CreatedDateUTC": "/Date(1573755038314)/"}
TAX_RATE = {"Name": "15% GST on Expenses", "TaxType": "INPUT2", "ReportTaxType": "INPUT", "DisplayTaxRate": 15.0,
            "EffectiveRate": 15.0, "Status": "ACTIVE",
            "TaxComponents": [{"Name": "GST", "Rate": 15.0, "IsCompound": False, "IsNonRecoverable": False}]}
TRANSFER = {"BankTransferID": "bx-1", "CreatedDateUTC": "/Date(1476737161140+0000)/",
            "Date": "/Date(1478985000000+0000)/", "Status": "AUTHORISED",
            "FromBankAccount": {"AccountID": "acc-1", "Code": "090"}, "ToBankAccount": {"AccountID": "acc-2"},
            "Amount": 20.0, "CurrencyRate": 1.0, "FromBankTransactionID": "bt-1", "ToBankTransactionID": "bt-2",
            "Reference": "Sub 098801", "HasAttachments": False}


def _load(engine, tmp_path, name, *records, run_id="run"):
    import json

    from intoaec_xero.extract import StreamExtract
    from intoaec_xero.load import load_stream
    from intoaec_xero.rawstore import RawStore

    stream = get_stream(name)
    raw = RawStore(tmp_path / "raw")
    raw.reset(run_id, "t", name)
    raw.write_page(run_id, "t", name, 1, json.dumps({"Id": "x", stream.records_key: list(records)}).encode())
    return load_stream(engine, raw, run_id, "t", stream, StreamExtract(stream=name))


@pytest.mark.parametrize("name, records", [
    ("organisation", [ORGANISATION]),
    ("tax_rates", [TAX_RATE, {**TAX_RATE, "TaxType": "NONE", "Name": "No GST", "DisplayTaxRate": 0.0,
                              "EffectiveRate": 0.0, "TaxComponents": []}]),
    ("bank_transfers", [TRANSFER, {**TRANSFER, "BankTransferID": "bx-2", "Amount": 1234.56}]),
])
def test_clean_records_of_the_new_streams_pass_every_check_and_land(engine, tmp_path, name, records,
                                                                      monkeypatch):
    from intoaec_xero.quality import suites
    from sqlalchemy import func

    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    loaded = _load(engine, tmp_path, name, *records)
    assert [r.label() for r in loaded.results if not r.passed] == []
    [table] = get_stream(name).targets
    assert {(table, c.name) for c in suites.checks_for(table)} <= {(r.table, r.check) for r in loaded.results}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(metadata.tables[table])).scalar_one() == len(records)
    again = _load(engine, tmp_path, name, *records, run_id="again")  # read whole every run: nothing changes
    assert (again.inserted, again.updated) == (0, 0)


def test_descriptive_values_of_the_new_tables_are_recorded_and_load(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    odd = {**ORGANISATION, "Class": "SOMETHING_NEW", "FinancialYearEndMonth": 13}
    loaded = _load(engine, tmp_path, "organisation", odd)
    assert sorted((r.check, r.severity) for r in loaded.results if not r.passed) == [
        ("financial_year_end_month_valid", "warn"), ("organisation_class_in_enum", "warn")]
    assert loaded.rows == {"organisations": 1}
    loaded = _load(engine, tmp_path, "tax_rates", {**TAX_RATE, "Status": "RETIRED"}, run_id="rates")
    assert [(r.check, r.severity) for r in loaded.results if not r.passed] == [("status_in_enum", "warn")]


def test_a_transfer_without_an_account_or_amount_is_held_back_alone(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    bad = {**TRANSFER, "BankTransferID": "bx-2", "ToBankAccount": {}}
    loaded = _load(engine, tmp_path, "bank_transfers", TRANSFER, bad)
    [held] = loaded.held
    assert held.label == "bx-2" and "required_present" in held.checks
    assert loaded.rows == {"bank_transfers": 1}


def test_bank_transfers_are_read_whole_once_then_from_the_newest_creation(engine, tmp_path, monkeypatch):
    """The engine's watermark on an unpaged stream whose cursor is CreatedDateUTC: the first read is whole, the
    next asks If-Modified-Since the newest transfer it saw (less the overlap), in one call, with no page."""
    import json
    from datetime import UTC, datetime

    from intoaec_xero import state
    from intoaec_xero.client import CallStats, Response
    from intoaec_xero.extract import WATERMARK_OVERLAP, extract_stream
    from intoaec_xero.load import load_stream
    from intoaec_xero.parsing import format_if_modified_since, parse_datetime
    from intoaec_xero.rawstore import RawStore

    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))

    class Xero:
        """Every transfer in one answer; If-Modified-Since compared with CreatedDateUTC, as Xero does for them."""

        def __init__(self, transfers):
            self.transfers, self.asked, self.stats = transfers, [], CallStats()

        def get(self, sdk_method, tenant_id, label, **params):
            self.stats.calls += 1
            self.asked.append((sdk_method, params))
            since = parse_datetime(params.get("if_modified_since"))
            rows = [t for t in self.transfers if since is None or parse_datetime(t["CreatedDateUTC"]) >= since]
            body = json.dumps({"Id": "x", "Status": "OK", "DateTimeUTC": "/Date(1764633600000)/",  # 2025-12-02
                               "BankTransfers": rows}).encode()
            return Response(payload=json.loads(body), body=body, headers={}, status=200)

    def created(day: int) -> str:
        return f"/Date({int(datetime(2025, 11, day, 9, tzinfo=UTC).timestamp() * 1000)}+0000)/"

    stream, raw = get_stream("bank_transfers"), RawStore(tmp_path / "raw")
    first = [{**TRANSFER, "BankTransferID": "bx-1", "CreatedDateUTC": created(3)},
             {**TRANSFER, "BankTransferID": "bx-2", "CreatedDateUTC": created(20)}]
    xero = Xero(first)

    def sync(run_id):
        extracted = extract_stream(xero, stream, "t", state.read_state(engine, "t", stream.name), raw, run_id)
        load_stream(engine, raw, run_id, "t", stream, extracted)
        return extracted

    extracted = sync("run-1")
    assert xero.asked == [("get_bank_transfers", {"include_deleted": "true"})]
    assert (extracted.full, extracted.records, extracted.max_cursor) == (
        True, 2, datetime(2025, 11, 20, 9, tzinfo=UTC).isoformat())
    assert state.read_state(engine, "t", stream.name).watermark == datetime(2025, 11, 20, 9, tzinfo=UTC)

    xero.transfers = [*first, {**TRANSFER, "BankTransferID": "bx-3", "CreatedDateUTC": created(25)}]
    extracted = sync("run-2")
    since = format_if_modified_since(datetime(2025, 11, 20, 9, tzinfo=UTC) - WATERMARK_OVERLAP)
    assert xero.asked[-1] == ("get_bank_transfers", {"include_deleted": "true", "if_modified_since": since})
    assert (extracted.full, extracted.records, extracted.api_calls) == (False, 2, 1)  # bx-2 again, and bx-3
    assert state.read_state(engine, "t", stream.name).watermark == datetime(2025, 11, 25, 9, tzinfo=UTC)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(metadata.tables["bank_transfers"].c.bank_transfer_id)).scalars()) == [
            "bx-1", "bx-2", "bx-3"]
