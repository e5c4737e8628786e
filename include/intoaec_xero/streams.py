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
    PAGE = "page"  # page + pageSize, with a pagination object
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

    @property
    def label(self) -> str:
        return f"GET {self.path}"

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
            params["page_size"] = self.page_size
        elif self.paging is Paging.OFFSET:
            params["offset"] = offset or 0
        if if_modified_since and self.supports_if_modified_since:
            params["if_modified_since"] = if_modified_since
        return params


def _params(**values: Any) -> MappingProxyType:
    return MappingProxyType(values)


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
)

INVOICES = Stream(
    name="invoices",
    path="/Invoices",
    sdk_method="get_invoices",
    records_key="Invoices",
    primary_key="InvoiceID",
    paging=Paging.PAGE,
    targets=("invoices", "invoice_lines"),
    params=_params(include_archived="true"),
)

PAYMENTS = Stream(
    name="payments",
    path="/Payments",
    sdk_method="get_payments",
    records_key="Payments",
    primary_key="PaymentID",
    paging=Paging.PAGE,
    targets=("payments",),
)

CREDIT_NOTES = Stream(
    name="credit_notes",
    path="/CreditNotes",
    sdk_method="get_credit_notes",
    records_key="CreditNotes",
    primary_key="CreditNoteID",
    paging=Paging.PAGE,
    targets=("credit_notes",),
)

ACCOUNTS = Stream(
    name="accounts",
    path="/Accounts",
    sdk_method="get_accounts",
    records_key="Accounts",
    primary_key="AccountID",
    paging=Paging.NONE,
    targets=("accounts",),
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
)

STREAMS: dict[str, Stream] = {
    s.name: s for s in (ACCOUNTS, TRACKING_CATEGORIES, CONTACTS, INVOICES, CREDIT_NOTES, PAYMENTS, JOURNALS)
}


def get_stream(name: str) -> Stream:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"Unknown stream {name!r}; known: {', '.join(STREAMS)}") from None
