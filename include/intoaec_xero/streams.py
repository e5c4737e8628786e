"""Xero streams, declared as data: one generic engine (:mod:`intoaec_xero.extract`) runs them.

Adding a stream means adding a ``Stream`` here and a transform in :mod:`intoaec_xero.transform`;
no new code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any


class Paging(str, Enum):  # noqa: UP042 - keeps str() of members as it is
    PAGE = "page"  # page (+ pageSize where the endpoint takes it), with a pagination object where Xero sends one
    OFFSET = "offset"  # Journals: offset = last JournalNumber, 100 per call
    NONE = "none"  # one call returns everything


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    sdk_method: str
    records_key: str
    primary_key: str
    paging: Paging
    targets: tuple[str, ...]
    cursor: str | None = "UpdatedDateUTC"
    supports_if_modified_since: bool = True
    page_size: int = 1000
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    offset_field: str | None = None
    plan_gated: bool = False
    # Lines carry tracking, so they get a project (see intoaec_xero.projects): the load resolves the
    # tenant's project dimension once, and the extract passes the connection's project settings along.
    project_lines: bool = False
    # The granular read scope Xero asks of apps created since March 2026 for this endpoint. A grant
    # without it (or a broad scope covering it) is refused with 401 AuthorizationUnsuccessful: the
    # stream is then skipped, saying the organisation needs re-consent, and the others still sync.
    scope: str = ""
    # Whether the endpoint takes pageSize. LinkedTransactions does not: Xero serves 100 a page.
    sized_pages: bool = True

    @property
    def label(self) -> str:
        return f"GET {self.path}"

    @property
    def title(self) -> str:
        """The stream in words, for messages: "bank transactions"."""
        return self.name.replace("_", " ")

    @property
    def granting_scopes(self) -> frozenset[str]:
        """Every scope that lets a grant read this endpoint: the granular read scope, its read-write
        twin, and the broad scopes (apps created before March 2026) it was split from."""
        if not self.scope:
            return frozenset()
        return frozenset({self.scope, self.scope.removesuffix(".read"), *BROAD_SCOPES.get(self.scope, ())})

    def request_params(self, *, page: int | None = None, offset: int | None = None,
                       if_modified_since: str | None = None, where: str | None = None) -> dict[str, Any]:
        """Keyword arguments for the xero-python method.

        ``where`` is Xero's filter expression; backfills narrow paged streams to a date window
        with it (``Date`` is one of the filters Xero serves efficiently on large organisations).
        """
        params: dict[str, Any] = dict(self.params)
        if where:
            params["where"] = where
        if self.paging is Paging.PAGE:
            params["page"] = page or 1
            if self.sized_pages:
                params["page_size"] = self.page_size
        elif self.paging is Paging.OFFSET:
            params["offset"] = offset or 0
        if if_modified_since and self.supports_if_modified_since:
            params["if_modified_since"] = if_modified_since
        return params


def _params(**values: Any) -> MappingProxyType:
    return MappingProxyType(values)


# Documents with unit amounts ask for them with 4 decimals; without unitdp=4 Xero rounds them to 2.
# Only where the endpoint takes it (Xero's spec and xero-python): PurchaseOrders and ManualJournals
# do not, and a PurchaseOrder's unit amounts then come rounded to 2 places (its line amounts are exact).
UNIT_DECIMALS = 4

# The granular read scopes (Xero's names since March 2026; see /work/shared/xero-notes.md §1, §6).
INVOICES_READ = "accounting.invoices.read"  # Invoices, CreditNotes, PurchaseOrders, LinkedTransactions, …
PAYMENTS_READ = "accounting.payments.read"  # Payments, Overpayments, Prepayments, BatchPayments
BANK_TRANSACTIONS_READ = "accounting.banktransactions.read"  # BankTransactions, BankTransfers
MANUAL_JOURNALS_READ = "accounting.manualjournals.read"
CONTACTS_READ = "accounting.contacts.read"
SETTINGS_READ = "accounting.settings.read"  # Accounts, TrackingCategories, TaxRates, Organisation
JOURNALS_READ = "accounting.journals.read"

# The broad scopes each granular one was split from: a grant of an older app holds these instead.
_TRANSACTIONS = ("accounting.transactions", "accounting.transactions.read")
BROAD_SCOPES: dict[str, tuple[str, ...]] = {
    INVOICES_READ: _TRANSACTIONS,
    PAYMENTS_READ: _TRANSACTIONS,
    BANK_TRANSACTIONS_READ: _TRANSACTIONS,
    MANUAL_JOURNALS_READ: _TRANSACTIONS,
}


CONTACTS = Stream(
    name="contacts",
    path="/Contacts",
    sdk_method="get_contacts",
    records_key="Contacts",
    primary_key="ContactID",
    paging=Paging.PAGE,
    targets=("clients",),
    # Archived contacts are only listed on request; they are kept with their status.
    params=_params(include_archived="true"),
    scope=CONTACTS_READ,
)

INVOICES = Stream(
    name="invoices",
    path="/Invoices",
    sdk_method="get_invoices",
    records_key="Invoices",
    primary_key="InvoiceID",
    paging=Paging.PAGE,
    targets=("invoices", "invoice_lines"),
    params=_params(include_archived="true", unitdp=UNIT_DECIMALS),
    project_lines=True,
    scope=INVOICES_READ,
)

PAYMENTS = Stream(
    name="payments",
    path="/Payments",
    sdk_method="get_payments",
    records_key="Payments",
    primary_key="PaymentID",
    paging=Paging.PAGE,
    targets=("payments",),
    scope=PAYMENTS_READ,
)

CREDIT_NOTES = Stream(
    name="credit_notes",
    path="/CreditNotes",
    sdk_method="get_credit_notes",
    records_key="CreditNotes",
    primary_key="CreditNoteID",
    paging=Paging.PAGE,
    targets=("credit_notes", "credit_note_lines"),
    params=_params(unitdp=UNIT_DECIMALS),
    project_lines=True,
    scope=INVOICES_READ,
)

ACCOUNTS = Stream(
    name="accounts",
    path="/Accounts",
    sdk_method="get_accounts",
    records_key="Accounts",
    primary_key="AccountID",
    paging=Paging.NONE,
    targets=("accounts",),
    scope=SETTINGS_READ,
)

TRACKING_CATEGORIES = Stream(
    name="tracking_categories",
    path="/TrackingCategories",
    sdk_method="get_tracking_categories",
    records_key="TrackingCategories",
    primary_key="TrackingCategoryID",
    paging=Paging.NONE,
    targets=("tracking_categories", "tracking_options"),
    # No If-Modified-Since on this endpoint and no UpdatedDateUTC: it is small, read it whole.
    cursor=None,
    supports_if_modified_since=False,
    params=_params(include_archived="true"),
    scope=SETTINGS_READ,
)

# One record per tenant: its base currency, financial year end and plan (Class).
ORGANISATION = Stream(
    name="organisation",
    path="/Organisation",
    sdk_method="get_organisations",
    records_key="Organisations",
    primary_key="OrganisationID",
    paging=Paging.NONE,
    targets=("organisations",),
    # No If-Modified-Since, no UpdatedDateUTC: one small record, read whole every run.
    cursor=None,
    supports_if_modified_since=False,
    scope=SETTINGS_READ,
)

TAX_RATES = Stream(
    name="tax_rates",
    path="/TaxRates",
    sdk_method="get_tax_rates",
    records_key="TaxRates",
    primary_key="TaxType",
    paging=Paging.NONE,
    targets=("tax_rates",),
    # Neither If-Modified-Since nor UpdatedDateUTC (Xero's spec): a few dozen rates, read whole every run.
    cursor=None,
    supports_if_modified_since=False,
    scope=SETTINGS_READ,
)

JOURNALS = Stream(
    name="journals",
    path="/Journals",
    sdk_method="get_journals",
    records_key="Journals",
    primary_key="JournalID",
    paging=Paging.OFFSET,
    targets=("journals", "journal_lines"),
    cursor="CreatedDateUTC",
    # The offset is the position; If-Modified-Since would only repeat what the offset says.
    supports_if_modified_since=False,
    page_size=100,
    offset_field="JournalNumber",
    plan_gated=True,
    project_lines=True,
    scope=JOURNALS_READ,
)


# The cost side: spend/receive money, manual journals, committed costs (purchase orders), retainers
# and deposits (prepayments, overpayments, with their allocations to invoices) and billable expenses.

BANK_TRANSACTIONS = Stream(
    name="bank_transactions",
    path="/BankTransactions",
    sdk_method="get_bank_transactions",
    records_key="BankTransactions",
    primary_key="BankTransactionID",
    paging=Paging.PAGE,
    targets=("bank_transactions", "bank_transaction_lines"),
    params=_params(unitdp=UNIT_DECIMALS),
    project_lines=True,
    scope=BANK_TRANSACTIONS_READ,
)

# Money moved between two of the organisation's bank accounts. Not paged: one call returns them all.
# A transfer is never edited (only deleted), so it carries CreatedDateUTC and no UpdatedDateUTC: the
# watermark is the newest creation, and If-Modified-Since reads only the transfers made since.
BANK_TRANSFERS = Stream(
    name="bank_transfers",
    path="/BankTransfers",
    sdk_method="get_bank_transfers",
    records_key="BankTransfers",
    primary_key="BankTransferID",
    paging=Paging.NONE,
    targets=("bank_transfers",),
    cursor="CreatedDateUTC",
    supports_if_modified_since=True,
    # Deleted transfers are left out unless asked for; without them one deleted after a sync would stay.
    params=_params(include_deleted="true"),
    scope=BANK_TRANSACTIONS_READ,
)

MANUAL_JOURNALS = Stream(
    name="manual_journals",
    path="/ManualJournals",
    sdk_method="get_manual_journals",
    records_key="ManualJournals",
    primary_key="ManualJournalID",
    paging=Paging.PAGE,
    targets=("manual_journals", "manual_journal_lines"),
    project_lines=True,
    scope=MANUAL_JOURNALS_READ,
)

PURCHASE_ORDERS = Stream(
    name="purchase_orders",
    path="/PurchaseOrders",
    sdk_method="get_purchase_orders",
    records_key="PurchaseOrders",
    primary_key="PurchaseOrderID",
    paging=Paging.PAGE,
    targets=("purchase_orders", "purchase_order_lines"),
    project_lines=True,
    scope=INVOICES_READ,
)

OVERPAYMENTS = Stream(
    name="overpayments",
    path="/Overpayments",
    sdk_method="get_overpayments",
    records_key="Overpayments",
    primary_key="OverpaymentID",
    paging=Paging.PAGE,
    # Their line items are the receive-money transaction's (bank_transaction_lines): not kept twice.
    targets=("overpayments", "overpayment_allocations"),
    params=_params(unitdp=UNIT_DECIMALS),
    scope=PAYMENTS_READ,
)

PREPAYMENTS = Stream(
    name="prepayments",
    path="/Prepayments",
    sdk_method="get_prepayments",
    records_key="Prepayments",
    primary_key="PrepaymentID",
    paging=Paging.PAGE,
    targets=("prepayments", "prepayment_allocations"),
    params=_params(unitdp=UNIT_DECIMALS),
    scope=PAYMENTS_READ,
)

LINKED_TRANSACTIONS = Stream(
    name="linked_transactions",
    path="/LinkedTransactions",
    sdk_method="get_linked_transactions",
    records_key="LinkedTransactions",
    primary_key="LinkedTransactionID",
    paging=Paging.PAGE,
    targets=("linked_transactions",),
    # Neither If-Modified-Since nor pageSize on this endpoint (Xero's spec): 100 a page, read whole
    # every run; the upsert writes only the rows that changed.
    cursor=None,
    supports_if_modified_since=False,
    page_size=100,
    sized_pages=False,
    scope=INVOICES_READ,
)

STREAMS: dict[str, Stream] = {
    s.name: s for s in (ACCOUNTS, TRACKING_CATEGORIES, ORGANISATION, TAX_RATES, CONTACTS, INVOICES, CREDIT_NOTES,
                        PAYMENTS, JOURNALS, BANK_TRANSACTIONS, BANK_TRANSFERS, MANUAL_JOURNALS, PURCHASE_ORDERS,
                        OVERPAYMENTS, PREPAYMENTS, LINKED_TRANSACTIONS)
}


def get_stream(name: str) -> Stream:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"Unknown stream {name!r}; known: {', '.join(STREAMS)}") from None
