"""What landed, per tenant and table, and how it compares with a reference (the sandbox's truth)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from intoaec_xero.db import cents_to_decimal, money_sum
from intoaec_xero.schema import TARGET_TABLES, metadata, xero_tenants

# The figures /_sandbox/truth publishes, as (table, money column or None).
TRUTH_FIGURES = {
    "clients": None,
    "invoices": "total",
    "invoice_lines": None,
    "payments": "amount",
    "credit_notes": "total",
    "credit_note_lines": "line_amount",
    "journals": None,
    "journal_lines": None,
    "bank_transactions": "total",
    "bank_transaction_lines": "line_amount",
    "bank_transfers": "amount",
    "tax_rates": None,
    "organisations": None,
    "manual_journals": None,
    "manual_journal_lines": None,
    "purchase_orders": "total",
    "purchase_order_lines": "line_amount",
    "prepayments": "total",
    "prepayment_allocations": "amount",
    "overpayments": "total",
    "overpayment_allocations": "amount",
    "linked_transactions": None,
}


def tenant_names(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.tenant_name)).all())


def row_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """{tenant_id: {table: rows}} for every target table."""
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for name in TARGET_TABLES:
            if name == "xero_tenants":
                continue
            table = metadata.tables[name]
            for tenant_id, count in conn.execute(
                select(table.c.tenant_id, func.count()).group_by(table.c.tenant_id)
            ):
                counts.setdefault(tenant_id, {})[name] = int(count)
    return counts


def figures(engine: Engine, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The truth-shaped figures of one tenant as loaded: counts, exact money sums, net by account."""
    result: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for name, money_column in TRUTH_FIGURES.items():
            table = metadata.tables[name]
            columns = [func.count()]
            if money_column:
                columns.append(money_sum(table.c[money_column]))
            row = conn.execute(select(*columns).where(table.c.tenant_id == tenant_id)).one()
            entry: dict[str, Any] = {"count": int(row[0])}
            if money_column:
                entry[money_column] = str(cents_to_decimal(row[1]))
            result[name] = entry
        lines = metadata.tables["journal_lines"]
        net = conn.execute(
            select(lines.c.account_code, money_sum(lines.c.net_amount))
            .where(lines.c.tenant_id == tenant_id)
            .group_by(lines.c.account_code)
        ).all()
        result["journal_lines"]["net_by_account_code"] = {code: str(cents_to_decimal(v)) for code, v in net}
        journals = metadata.tables["journals"]
        result["journals"]["derived"] = conn.execute(select(journals.c.journal_id).where(
            journals.c.tenant_id == tenant_id, journals.c.origin != "xero").limit(1)).first() is not None
    return result


def compare_with_truth(engine: Engine, truth: dict[str, Any], tables: set[str] | None = None) -> list[str]:
    """Every difference between what landed and the truth, as readable lines; empty means equal.

    A tenant whose ledger is derived from documents is compared on its net by account, not on
    Xero's journal and line counts, which a derived ledger does not reproduce (Xero's include the
    reversals of edited documents).

    ``tables`` limits the comparison to the tables a run was asked to sync.
    """
    differences = []
    for tenant_id, expected in truth.get("tenants", {}).items():
        actual = figures(engine, tenant_id)
        for table, wanted in expected.items():
            if table not in actual or (tables is not None and table not in tables):
                continue
            for key, value in wanted.items():
                got = actual[table].get(key)
                if key == "net_by_account_code":
                    want = {k: Decimal(v) for k, v in value.items() if Decimal(v) != 0}
                    have = {k: Decimal(v) for k, v in (got or {}).items() if Decimal(v) != 0}
                    if want != have:
                        differences.append(f"{tenant_id} {table}.{key} differs")
                elif key == "count":
                    if table in ("journals", "journal_lines") and actual["journals"]["derived"]:
                        continue  # a ledger derived from documents has its own journals; its net is what counts
                    if int(value) != got:
                        differences.append(f"{tenant_id} {table}.count: expected {value}, got {got}")
                elif Decimal(str(value)) != Decimal(str(got)):
                    differences.append(f"{tenant_id} {table}.{key}: expected {value}, got {got}")
    return differences


def format_counts(engine: Engine, tables: tuple[str, ...] | None = None) -> str:
    counts = row_counts(engine)
    names = tenant_names(engine)
    tables = tables or tuple(t for t in TARGET_TABLES if t != "xero_tenants"
                             and any(t in c for c in counts.values()))
    header = ["tenant"] + list(tables)
    body = [[names.get(tid, tid)] + [str(c.get(t, 0)) for t in tables] for tid, c in sorted(
        counts.items(), key=lambda item: names.get(item[0], item[0]))]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths,
             strict=True))) for r in [header] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
