"""The ledger as the reconciliation reads it: net by account as at a date, and an account's balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from intoaec_xero.quality.reconcile import _Ledger
from intoaec_xero.schema import journal_lines, journals

TENANT = "t-1"


def _post(conn, number: int, day: date, lines: list[tuple[str, str]]) -> None:
    journal_id = f"j-{number}"
    conn.execute(journals.insert(), [{"tenant_id": TENANT, "journal_id": journal_id, "journal_number": number,
                                      "journal_date": day}])
    conn.execute(journal_lines.insert(), [
        {"tenant_id": TENANT, "journal_line_id": f"{journal_id}-{n}", "journal_id": journal_id,
         "account_id": account, "net_amount": Decimal(amount)} for n, (account, amount) in enumerate(lines)])


def test_net_by_account_as_at_a_date_and_whole(engine):
    with engine.begin() as conn:
        _post(conn, 1, date(2026, 1, 10), [("debtors", "115.00"), ("sales", "-100.00"), ("gst", "-15.00")])
        _post(conn, 2, date(2026, 2, 1), [("bank", "40.01"), ("debtors", "-40.01")])
        _post(conn, 3, date(2026, 3, 1), [("debtors", "0.10"), ("sales", "-0.10")])
        # Another tenant's lines never count.
        conn.execute(journal_lines.insert(), [{"tenant_id": "t-2", "journal_line_id": "x", "journal_id": "j-1",
                                               "account_id": "debtors", "net_amount": Decimal("999.99")}])
    with engine.connect() as conn:
        ledger = _Ledger(conn, TENANT)
        everything = {"debtors": Decimal("75.09"), "sales": Decimal("-100.10"), "gst": Decimal("-15.00"),
                      "bank": Decimal("40.01")}
        assert ledger.by_account(date(2026, 3, 1)) == everything
        assert ledger.by_account(date(2027, 1, 1)) == everything
        # A date before the latest journal leaves the later ones out.
        assert ledger.by_account(date(2026, 2, 28)) == {"debtors": Decimal("74.99"), "sales": Decimal("-100.00"),
                                                        "gst": Decimal("-15.00"), "bank": Decimal("40.01")}
        assert ledger.by_account(date(2026, 1, 9)) == {}
        assert ledger.balance(["debtors"]) == Decimal("75.09")
        assert ledger.balance(["debtors", "bank"]) == Decimal("115.10")
        assert ledger.balance(["nothing"]) == Decimal("0.00")
