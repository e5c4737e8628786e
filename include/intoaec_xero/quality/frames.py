"""Rows → pandas frames the suites can check quickly, with the derived columns they read.

Transform hands over Python objects (str, Decimal, date). Asking Great Expectations to test
each object's type or decimal places would loop in Python once per expectation; instead each
column is classified once here, in passes that loop in C (the set of its values' types, one
join of a text column, the sum and the leading digit of an amount column, the earliest and
latest date), and only a column that is not clean is walked value by value. Sums across
tables (an invoice's lines, a journal's lines) are computed in exact integer cents.

Every frame also carries :data:`RECORD_LABEL`: which record of the batch each row came from (an
invoice line names its invoice), so a record-level failure names the record to hold back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import repeat
from operator import attrgetter, eq, is_, methodcaller
from typing import Any

import numpy as np
import orjson
import pandas as pd
from pandas.api.types import infer_dtype
from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Integer, Numeric, String, Text

from intoaec_xero.quality import suites
from intoaec_xero.quality.model import is_storable
from intoaec_xero.schema import metadata

# The frame column naming each row's record (see the module's note).
RECORD_LABEL = "record_label"

EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
EARLIEST_TS = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TS = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class ColumnKind:
    name: str
    kind: str  # str, decimal, date, datetime, bool, int, json
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    int_limit: int | None = None


def _kind(column) -> ColumnKind:
    t = column.type
    if isinstance(t, JSON):
        return ColumnKind(column.name, "json")
    if isinstance(t, Numeric):
        return ColumnKind(column.name, "decimal", precision=t.precision, scale=t.scale)
    if isinstance(t, BigInteger):
        return ColumnKind(column.name, "int", int_limit=2**63)
    if isinstance(t, Integer):
        return ColumnKind(column.name, "int", int_limit=2**31)
    if isinstance(t, Boolean):
        return ColumnKind(column.name, "bool")
    if isinstance(t, DateTime):
        return ColumnKind(column.name, "datetime")
    if isinstance(t, Date):
        return ColumnKind(column.name, "date")
    if isinstance(t, (String, Text)):
        return ColumnKind(column.name, "str", length=getattr(t, "length", None))
    raise TypeError(f"no quality rule for column type {t!r} of {column}")  # pragma: no cover


_KINDS: dict[str, tuple[ColumnKind, ...]] = {}


def kinds(table: str) -> tuple[ColumnKind, ...]:
    if table not in _KINDS:
        _KINDS[table] = tuple(_kind(c) for c in metadata.tables[table].columns)
    return _KINDS[table]


# infer_dtype's verdict for a column whose every non-null value has the right type.
_CLEAN = {"str": {"string"}, "decimal": {"decimal"}, "date": {"date"}, "datetime": {"datetime"},
          "bool": {"boolean"}, "int": {"integer"}}


_TZINFO = attrgetter("tzinfo")
_PYTHON_TYPE = {"str": str, "decimal": Decimal, "date": date, "datetime": datetime, "bool": bool, "int": int}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "decimal":
        return isinstance(value, Decimal) and value.is_finite()
    if kind == "date":
        return isinstance(value, date) and not isinstance(value, datetime)
    if kind == "datetime":
        return isinstance(value, datetime) and value.tzinfo is not None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return True


class _Problems:
    """Per row, the names of the columns a rule found wrong; null when none."""

    def __init__(self, n: int):
        self.n = n
        self.rows: dict[int, list[str]] = {}

    def add(self, positions: Iterable[int], column: str) -> None:
        for i in positions:
            self.rows.setdefault(i, []).append(column)

    def column(self) -> list[str | None]:
        if not self.rows:
            return [None] * self.n
        return [", ".join(self.rows[i]) if i in self.rows else None for i in range(self.n)]

    def series(self) -> pd.Series:
        if not self.rows:
            return pd.Series(np.full(self.n, None, dtype=object))
        return pd.Series(self.column(), dtype=object)


def _values_fit(kind: ColumnKind, values: Sequence[Any], problems: _Problems) -> bool:
    """Flag values of the wrong type, too long or out of integer range; True if the column is clean."""
    if kind.kind == "json":
        return True
    # Values of exactly the kind's Python type (or None) are what pandas would infer, without its
    # copy of the list; anything else is left to pandas.
    types = set(map(type, values))
    types.discard(type(None))
    if not types:
        inferred = "empty"
    elif types == {_PYTHON_TYPE[kind.kind]}:
        inferred = next(iter(_CLEAN[kind.kind]))
    else:
        inferred = infer_dtype(values, skipna=True)
    clean = inferred == "empty" or inferred in _CLEAN[kind.kind]
    if clean and kind.kind == "datetime":
        # A naive timestamp would be stored as local time on PostgreSQL. (A datetime is never falsy.)
        clean = not any(map(is_, map(_TZINFO, filter(None, values)), repeat(None)))
    bad: list[int] = []
    if not clean:
        bad = [i for i, v in enumerate(values) if v is not None and not _type_ok(kind.kind, v)]
    if kind.kind == "str" and kind.length:
        limit = kind.length
        longest = max(map(len, filter(None, values)), default=0) if clean else max(
            (len(v) for v in values if isinstance(v, str)), default=0)
        if longest > limit:
            bad.extend(i for i, v in enumerate(values) if isinstance(v, str) and len(v) > limit)
    elif kind.kind == "int" and kind.int_limit:
        limit = kind.int_limit
        try:  # the smallest and the largest say it for a clean column without nulls
            fits = clean and inferred != "empty" and -limit <= min(values) and max(values) < limit
        except TypeError:  # a null among them: look at each value
            fits = False
        if not fits:
            bad.extend(i for i, v in enumerate(values)
                       if isinstance(v, int) and not isinstance(v, bool) and not -limit <= v < limit)
    if bad:
        problems.add(sorted(set(bad)), kind.name)
    return clean and not bad


def _text_fits(kind: ColumnKind, values: Sequence[Any], fit: _Problems, storable: _Problems) -> bool:
    """values_fit_columns and text_storable for a text column, as :func:`_values_fit` and
    :func:`_text_storable` decide them: when every value is text (or null), one join of the
    column in C says so and is the text tested for what PostgreSQL refuses."""
    text: str | None
    try:
        text = "".join(values)  # most text columns hold no null
    except TypeError:
        text = "".join(filter(None, values)) if set(map(type, values)) <= _TEXT_TYPES else None
    if text is None:  # a value of another type (or a NaN): the general path
        clean = _values_fit(kind, values, fit)
        _text_storable(kind, values, storable)
        return clean
    bad: list[int] = []
    if kind.length and max(map(len, filter(None, values)), default=0) > kind.length:
        bad = [i for i, v in enumerate(values) if isinstance(v, str) and len(v) > kind.length]
        fit.add(bad, kind.name)
    if not is_storable(text):
        storable.add([i for i, v in enumerate(values) if isinstance(v, str) and not is_storable(v)], kind.name)
    return not bad


def _money_exact(kind: ColumnKind, values: Sequence[Any], present: list[Any], clean: bool,
                 problems: _Problems) -> None:
    """Flag amounts with more places than the column keeps (it would round them) or too large.

    ``present`` is ``values`` without its nulls.
    """
    digits = (kind.precision or 18) - (kind.scale or 0)
    places = Decimal(1).scaleb(-(kind.scale or 0))
    limit = Decimal(10) ** digits
    if not present:
        return
    # A finite value is below 10**digits when its leading digit's place (adjusted) is.
    if clean and max(map(Decimal.adjusted, present)) < digits:
        # A sum keeps the most places of its terms (exactly, at this size; and it is not finite if
        # a term is not): one C-level pass says whether any value needs a closer look.
        total = sum(present)
        if total.is_finite() and total.as_tuple().exponent >= -(kind.scale or 0):
            return
    bad = [i for i, v in enumerate(values) if v is not None and not _exact(v, places, limit)]
    if bad:
        problems.add(bad, kind.name)


def _exact(value: Any, places: Decimal, limit: Decimal) -> bool:
    if not isinstance(value, Decimal) or not value.is_finite():
        return True  # a wrong type is values_fit_columns' finding, not this one's
    try:
        return -limit < value < limit and value == value.quantize(places)
    except InvalidOperation:
        return False


def _dates_in_range(kind: ColumnKind, values: Sequence[Any], problems: _Problems) -> None:
    low, high = (EARLIEST, LATEST) if kind.kind == "date" else (EARLIEST_TS, LATEST_TS)
    try:  # the earliest and the latest say it when the values compare with each other and the bounds
        present = [v for v in values if v is not None]
        if not present or (low <= min(present) and max(present) <= high):
            return
    except TypeError:
        pass
    try:
        bad = [i for i, v in enumerate(values) if v is not None and not low <= v <= high]
    except TypeError:
        bad = [i for i, v in enumerate(values)
               if v is not None and _type_ok(kind.kind, v) and not low <= v <= high]
    if bad:
        problems.add(bad, kind.name)


def _text_storable(kind: ColumnKind, values: Sequence[Any], problems: _Problems) -> None:
    """Flag text PostgreSQL refuses: NUL, or an unpaired surrogate (not UTF-8), anywhere in a value.

    One joined string per column is tested in C; only a column that holds such text is walked.
    """
    if kind.kind == "str":
        try:
            text = "".join(filter(None, values))
        except TypeError:  # a value of another type: values_fit_columns' finding
            text = "".join(v for v in values if isinstance(v, str))
        if is_storable(text):
            return
        bad = [i for i, v in enumerate(values) if isinstance(v, str) and not is_storable(v)]
    elif kind.kind == "json":
        try:
            # orjson refuses unpaired surrogates and writes NUL as \u0000 (so does any JSON the
            # database is sent); a literal backslash before "u0000" only costs the walk below.
            if b"\\u0000" not in orjson.dumps(list(values), default=str):
                return
        except (TypeError, orjson.JSONEncodeError):
            pass
        bad = [i for i, v in enumerate(values) if not _json_storable(v)]
    else:
        return
    if bad:
        problems.add(bad, kind.name)


def _json_storable(value: Any) -> bool:
    if isinstance(value, str):
        return is_storable(value)
    if isinstance(value, dict):
        return all(_json_storable(k) and _json_storable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(map(_json_storable, value))
    return True


def cents(values: Sequence[Any]) -> np.ndarray:
    """Integer cents of 2-place amounts as float64 (NaN when missing), for equality tests.

    Through float when every amount is below 10^13 (float64 holds those cents exactly),
    otherwise through exact integers.
    """
    try:
        amounts = pd.Series(values, dtype=object).astype(np.float64).to_numpy()
    except (TypeError, ValueError):
        amounts = None
    if amounts is not None and not (np.abs(amounts) >= 1e13).any():
        return np.rint(amounts * 100)
    return np.array([np.nan if c is None else c for c in exact_cents(values)], dtype=np.float64)


def exact_cents(values: Sequence[Any]) -> list[int | None]:
    """The same as :func:`cents` as Python ints, for sums that must not round."""
    result: list[int | None] = []
    for v in values:
        if isinstance(v, Decimal) and v.is_finite():
            try:
                result.append(int(v.scaleb(2)))
                continue
            except (InvalidOperation, OverflowError):
                pass
        result.append(None)
    return result


@dataclass
class References:
    """Ids already in IntoAEC's tables that a batch may point at (read once per stream)."""

    invoice_ids: set[str] | None = None
    account_ids: set[str] | None = None


@dataclass
class Frame:
    table: str
    data: pd.DataFrame
    key: str
    record_key: str
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


_VALUES = methodcaller("values")


def _columns(table: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows to column lists; transform builds every row of a table with the same keys in the same order."""
    columns = [k.name for k in kinds(table)]
    first = tuple(rows[0])
    # Both passes loop in C: each row's keys against the first row's, then one zip over the values.
    if all(map(first.__eq__, map(tuple, rows))):
        data = dict(zip(first, map(list, zip(*map(_VALUES, rows), strict=True)), strict=True))
        return {c: data.get(c, [None] * len(rows)) for c in columns}
    return {c: [row.get(c) for row in rows] for c in columns}


@dataclass
class _Table:
    """One table of a chunk while its frame is built: the frame's columns are gathered in order and
    made one DataFrame at the end (adding them one by one to a DataFrame copies it each time)."""

    data: dict[str, list[Any]]  # every column's values; a column that is not clean shown as text
    columns: dict[str, Any]  # the frame's columns, in order


def _objects(values: Sequence[Any]) -> pd.Series:
    return pd.Series(values, dtype=object)


def _base(table: str, rows: list[dict[str, Any]]) -> _Table:
    columns = [k.name for k in kinds(table)]
    data = _columns(table, rows)
    n = len(rows)
    spec = suites.TABLES[table]
    problems_fit, problems_money, problems_dates, problems_text = _Problems(n), _Problems(n), _Problems(n), _Problems(n)
    # Whether an amount column holds a null, found while its values are walked anyway (`None in` a
    # list of Decimals costs a slow comparison per value).
    has_null: dict[str, bool] = {}
    for kind in kinds(table):
        values = data[kind.name]
        if kind.kind == "str":
            clean = _text_fits(kind, values, problems_fit, problems_text)
        else:
            clean = _values_fit(kind, values, problems_fit)
            _text_storable(kind, values, problems_text)
        if kind.kind == "decimal":
            present = [v for v in values if v is not None]
            has_null[kind.name] = len(present) < n
            _money_exact(kind, values, present, clean, problems_money)
        elif kind.kind in ("date", "datetime"):
            _dates_in_range(kind, values, problems_dates)
        if not clean and kind.kind not in ("json",):
            # Unhashable or mixed values would trip pandas' uniqueness and set tests; show them as text.
            data[kind.name] = [v if v is None or isinstance(v, (str, int, float, Decimal, date, bool))
                               else repr(v) for v in values]
    used = suites.columns_used(table)
    frame = {c: _objects(data[c]) for c in columns if c in used or c == spec.key or c == spec.record_key}
    for name, problems in ((suites.VALUES_NOT_FITTING, problems_fit), (suites.MONEY_NOT_EXACT, problems_money),
                           (suites.DATES_OUT_OF_RANGE, problems_dates), (suites.TEXT_NOT_STORABLE, problems_text)):
        if name in used:
            frame[name] = problems.series()
    text = {k.name for k in kinds(table) if k.kind == "str"}
    for name, checked in ((suites.MISSING_REQUIRED, spec.required), (suites.MISSING_EXPECTED, spec.expected)):
        if checked:
            missing = _Problems(n)
            for column in checked:
                values = data[column]
                null = has_null[column] if column in has_null else None in values
                # `"" in` only where text is expected: comparing "" with Decimals is slow.
                if null or (column in text and "" in values):
                    missing.add((i for i, v in enumerate(values) if v is None or (isinstance(v, str) and v == "")),
                                column)
            frame[name] = missing.series()
    return _Table(data, frame)


def build_frames(stream_targets: Sequence[str], rows_by_table: dict[str, list[dict[str, Any]]],
                 refs: References, labels: dict[str, list[str]] | None = None) -> dict[str, Frame]:
    """One frame per non-empty table of the chunk, derived columns included.

    ``labels`` names each row's record, per table and in row order; without it a row's record is
    its own record key column.
    """
    built: dict[str, _Table] = {}
    for table in stream_targets:
        rows = rows_by_table.get(table) or []
        if rows and table in suites.TABLES:
            built[table] = _base(table, rows)
    if "invoices" in built:
        _invoice_derived(built["invoices"], built.get("invoice_lines"))
    if "invoice_lines" in built:
        invoice_ids = set(built["invoices"].data["invoice_id"]) if "invoices" in built else set()
        lines = built["invoice_lines"]
        lines.columns["invoice_resolves"] = _contained(lines.data["invoice_id"], invoice_ids)
    if "credit_notes" in built:
        notes = built["credit_notes"]
        notes.columns["total_gap_cents"] = (cents(notes.data["total"]) - cents(notes.data["sub_total"])
                                            - cents(notes.data["total_tax"]))
    if "credit_note_lines" in built:
        note_ids = set(built["credit_notes"].data["credit_note_id"]) if "credit_notes" in built else set()
        lines = built["credit_note_lines"]
        lines.columns["credit_note_resolves"] = _contained(lines.data["credit_note_id"], note_ids)
    if "payments" in built:
        paid = built["payments"]
        known = refs.invoice_ids or set()
        paid.columns["invoice_resolves"] = pd.Series([v is None or v in known for v in paid.data["invoice_id"]],
                                                     dtype=bool)
    if "journals" in built:
        _journal_derived(built["journals"], built.get("journal_lines"))
    if "journal_lines" in built:
        lines = built["journal_lines"]
        lines.columns["account_resolves"] = _contained(lines.data["account_id"], refs.account_ids or set())
    _declared_derived(built)
    frames = {}
    for table, parts in built.items():
        spec = suites.TABLES[table]
        record_key = spec.record_key
        if labels is not None:
            parts.columns[RECORD_LABEL] = _objects(labels[table])
            record_key = RECORD_LABEL
        frame = pd.DataFrame(parts.columns, copy=False)
        frames[table] = Frame(table, frame, spec.key, record_key, rows=len(frame))
    return frames


def _declared_derived(built: dict[str, _Table]) -> None:
    """The derived columns a table's suite reads and its :class:`~suites.TableSpec` declares the way
    to (the cost side's documents, lines and allocations); a column already derived is kept."""
    for table, parts in built.items():
        spec, used, columns = suites.TABLES[table], suites.columns_used(table), parts.columns
        data = parts.data
        if suites.TOTAL_GAP in used and suites.TOTAL_GAP not in columns:
            columns[suites.TOTAL_GAP] = cents(data["total"]) - cents(data["sub_total"]) - cents(data["total_tax"])
        if spec.lines and (suites.LINES_GAP in used or suites.LINE_SUM in used):
            line_spec = suites.TABLES[spec.lines]
            sums = _sums_by_parent(parts, spec.key, built.get(spec.lines), line_spec.record_key, line_spec.key,
                                   "line_amount")
            if suites.LINE_SUM in used and suites.LINE_SUM not in columns:
                columns[suites.LINE_SUM] = sums
            if suites.LINES_GAP in used and suites.LINES_GAP not in columns:
                # Inclusive line amounts include tax, so they add up to the total; otherwise to the subtotal.
                kinds_ = data["line_amount_types"]
                inclusive = np.fromiter(map(eq, kinds_, repeat("Inclusive")), dtype=bool, count=len(kinds_))
                columns[suites.LINES_GAP] = sums - np.where(inclusive, cents(data["total"]), cents(data["sub_total"]))
        if spec.parent and suites.PARENT_RESOLVES in used and suites.PARENT_RESOLVES not in columns:
            parent = built.get(spec.parent)
            known = set(parent.data[suites.TABLES[spec.parent].key]) if parent else set()
            columns[suites.PARENT_RESOLVES] = _contained(data[spec.record_key], known)


def _contained(values: list[Any], known: set[Any]) -> np.ndarray:
    """Per value, whether ``known`` holds it (one pass in C)."""
    return np.fromiter(map(known.__contains__, values), dtype=bool, count=len(values))


def _invoice_derived(invoices: _Table, lines: _Table | None) -> None:
    data = invoices.data
    total, sub_total, tax = cents(data["total"]), cents(data["sub_total"]), cents(data["total_tax"])
    paid, due = cents(data["amount_paid"]), cents(data["amount_due"])
    credited = np.nan_to_num(cents(data["amount_credited"]), nan=0.0)  # Xero may leave it out when nil
    invoices.columns["total_gap_cents"] = total - sub_total - tax
    invoices.columns["amount_due_gap_cents"] = due - (total - paid - credited)
    line_sums = _sums_by_parent(invoices, "invoice_id", lines, "invoice_id", "line_item_id", "line_amount")
    # Inclusive line amounts include tax, so they add up to the total; otherwise to the subtotal.
    kinds_ = data["line_amount_types"]
    inclusive = np.fromiter(map(eq, kinds_, repeat("Inclusive")), dtype=bool, count=len(kinds_))
    invoices.columns["lines_gap_cents"] = line_sums - np.where(inclusive, total, sub_total)


def _journal_derived(journals: _Table, lines: _Table | None) -> None:
    journals.columns["net_sum_cents"] = _sums_by_parent(journals, "journal_id", lines, "journal_id",
                                                        "journal_line_id", "net_amount")
    numbers = journals.data["journal_number"]
    if infer_dtype(numbers, skipna=False) == "integer" and -(2**63) <= min(numbers) and max(numbers) < 2**63:
        journals.columns["journal_number"] = np.array(numbers, dtype=np.int64)


# Below this, sums of whole cents held as float64 are exact whatever the order of the terms.
_EXACT_FLOAT = 2.0**52


def _sums_by_parent(parents: _Table, parent_key: str, lines: _Table | None, parent: str, key: str,
                    amount: str) -> np.ndarray:
    """Per parent row, the cents of its lines: 0 when it has none (or no id), NaN when none of its
    lines has an amount. A line listed twice (its record sent twice) counts once, as it loads.

    Ids that are all text (or null), line ids all different and sums that float64 holds exactly
    take one vectorised pass: the parents' and the lines' ids numbered together, the cents added
    up per number. Anything else goes through :func:`_sum_by_parent`, which gives the same sums.
    """
    ids = parents.data[parent_key]
    if lines is None:
        return np.zeros(len(ids), dtype=np.float64)
    amounts = cents(lines.data[amount])
    keys, owners = lines.data[key], lines.data[parent]
    if (_text_only(ids) and _text_only(owners) and _text_only(keys) and len(set(keys)) == len(keys)
            and not np.nansum(np.abs(amounts)) >= _EXACT_FLOAT):
        codes, uniques = pd.factorize(np.array(ids + owners, dtype=object))
        if not len(uniques):
            return np.zeros(len(ids), dtype=np.float64)
        mine, theirs = codes[: len(ids)], codes[len(ids):]
        owned = theirs >= 0  # lines without a parent id belong to no parent
        theirs, amounts = theirs[owned], amounts[owned]
        known = ~np.isnan(amounts)
        lines_of = np.bincount(theirs, minlength=len(uniques))
        counted = np.bincount(theirs[known], minlength=len(uniques))
        added = np.bincount(theirs[known], weights=amounts[known], minlength=len(uniques))
        per_id = np.where(lines_of > 0, np.where(counted > 0, added, np.nan), 0.0)
        return np.where(mine >= 0, per_id[mine], 0.0)
    sums = _sum_by_parent(owners, keys, amounts)
    return np.array([sums.get(i, 0) if isinstance(i, str) else 0 for i in ids], dtype=np.float64)


def _text_only(values: list[Any]) -> bool:
    """Whether every value is a str or None (pandas and Python then agree on what is null and equal)."""
    return set(map(type, values)) <= _TEXT_TYPES


_TEXT_TYPES = {str, type(None)}


def _sum_by_parent(parents: list[Any], keys: list[Any], amounts: np.ndarray) -> dict[Any, float]:
    """Cents per parent; a line listed twice (its record sent twice) counts once, as it loads."""
    frame = pd.DataFrame({"parent": pd.Series(parents, dtype=object), "key": pd.Series(keys, dtype=object),
                          "cents": amounts})
    if not frame["key"].is_unique:
        frame = frame.drop_duplicates("key", keep="last")
    frame = frame[frame["parent"].notna()]
    return frame.groupby("parent", sort=False)["cents"].sum(min_count=1).to_dict()
