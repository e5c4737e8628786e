"""A 401 AuthorizationUnsuccessful on a stream whose scope the grant lacks is a re-consent, not a failure.

Granular scopes are never added to an existing grant: a stream the sync started reading after the
organisation consented (bank transactions, manual journals) is refused until it consents again. That
stream comes back ``unavailable`` with a sentence naming the tenant and the stream; a 401 the grant's
scopes do not explain is still a failure (and Journals' tier gate keeps its own words).
"""

from __future__ import annotations

from typing import Any

import pytest
from intoaec_xero.client import CallStats
from intoaec_xero.errors import XeroAccessDenied
from intoaec_xero.extract import consent_sentence, extract_stream, needs_consent
from intoaec_xero.ledger import JOURNALS_REFUSED
from intoaec_xero.rawstore import RawStore
from intoaec_xero.settings import DEFAULT_SCOPES
from intoaec_xero.state import StreamState
from intoaec_xero.streams import STREAMS, get_stream
from intoaec_xero.tokens import TokenSet

BEFORE_2026_APP = ("offline_access", "accounting.transactions.read", "accounting.contacts.read",
                   "accounting.settings.read", "accounting.journals.read")
GRANTED_BEFORE_THE_COST_SIDE = tuple(s for s in DEFAULT_SCOPES if s not in (
    "accounting.banktransactions.read", "accounting.manualjournals.read"))


class RefusingXero:
    """Answers every call with Xero's 401 AuthorizationUnsuccessful; its grant holds ``scopes``."""

    def __init__(self, scopes: tuple[str, ...] | None):
        self.scopes = scopes
        self.stats = CallStats()

    def current_tokens(self) -> TokenSet:
        if self.scopes is None:
            raise AttributeError("no token store")
        return TokenSet(access_token="a", expires_at=0, scope=self.scopes)

    def get(self, sdk_method: str, tenant_id: str, label: str, **params: Any):
        self.stats.calls += 1
        raise XeroAccessDenied(f"{label}: Xero answered 401 AuthorizationUnsuccessful.", status=401, endpoint=label)


def test_the_streams_a_grant_from_before_the_cost_side_cannot_read():
    client = RefusingXero(GRANTED_BEFORE_THE_COST_SIDE)
    assert {name for name, stream in STREAMS.items() if needs_consent(client, stream)} == {
        "bank_transactions", "bank_transfers", "manual_journals"}
    # An app from before the granular scopes holds accounting.transactions.read, which covers them all.
    assert not any(needs_consent(RefusingXero(BEFORE_2026_APP), stream) for stream in STREAMS.values())


def test_unknown_scopes_are_taken_as_missing_except_where_the_app_tier_decides():
    client = RefusingXero(None)
    assert needs_consent(client, get_stream("bank_transactions"))
    assert not needs_consent(client, get_stream("journals"))  # below Xero's Advanced tier: not a scope matter
    assert needs_consent(RefusingXero(("offline_access",)), get_stream("journals"))


def _extract(tmp_path, client, stream: str):
    return extract_stream(client, get_stream(stream), "tenant-1", StreamState(), RawStore(tmp_path), "run",
                          tenant_name="Studio Pacific")


def test_a_missing_scope_makes_the_stream_unavailable_with_one_sentence(tmp_path):
    result = _extract(tmp_path, RefusingXero(GRANTED_BEFORE_THE_COST_SIDE), "manual_journals")
    assert result.unavailable == consent_sentence(get_stream("manual_journals"), "tenant-1", "Studio Pacific")
    assert result.unavailable.startswith("Studio Pacific (tenant-1) needs re-consent for manual journals: ")
    assert "accounting.manualjournals.read" in result.unavailable and "GET /ManualJournals" in result.unavailable
    assert result.extra["needs_consent"] == "accounting.manualjournals.read"
    assert (result.pages, result.records, result.api_calls) == (0, 0, 1)


def test_a_refusal_the_grant_does_not_explain_is_still_a_failure(tmp_path):
    with pytest.raises(XeroAccessDenied, match="401"):
        _extract(tmp_path, RefusingXero(DEFAULT_SCOPES), "bank_transactions")
    # Journals with their scope granted: the app's Xero tier, in the words status and the page show;
    # the load derives the ledger from the documents instead.
    journals = _extract(tmp_path, RefusingXero(DEFAULT_SCOPES), "journals")
    assert journals.unavailable and JOURNALS_REFUSED in journals.unavailable and "needs_consent" not in journals.extra
    assert journals.extra["ledger"] == "derived"


def test_without_the_tenants_name_the_sentence_still_names_it():
    assert consent_sentence(get_stream("bank_transactions"), "tenant-9").startswith(
        "The organisation tenant-9 needs re-consent for bank transactions: ")
