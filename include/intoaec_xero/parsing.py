"""Xero's wire formats to Python values, exactly.

Xero sends dates as MS-JSON (``/Date(1518685950940+0000)/``: epoch milliseconds, an optional
offset that does not change the instant, negative before 1970) and money as JSON numbers.
Money is parsed from the JSON text itself (``parse_float=Decimal``), never through float.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def loads(payload: bytes | str) -> Any:
    """Parse a Xero JSON body keeping every number exact (Decimal, never float)."""
    return json.loads(payload, parse_float=Decimal)


def parse_datetime(value: Any) -> datetime | None:
    """A Xero timestamp as an aware UTC datetime.

    MS-JSON epoch milliseconds are UTC whatever the offset suffix says (the suffix only
    records the organisation's zone), so the offset is ignored. ISO strings such as
    ``2019-01-02T03:04:05`` (no zone, UTC by Xero's convention) are accepted too.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a Xero date: {value!r}")
    match = _MS_DATE.match(value)
    if match:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a Xero date: {value!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    """A Xero calendar date (invoice Date, DueDate, JournalDate).

    Xero encodes these as midnight UTC of the organisation-local date, so the UTC date is the
    date; converting to any local zone would shift it by a day.
    """
    moment = parse_datetime(value)
    return None if moment is None else moment.date()


def parse_money(value: Any) -> Decimal | None:
    """An exact decimal from a JSON number or numeric string; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # Only reached when a caller parsed JSON without parse_float=Decimal; repr is the
        # shortest string that round-trips, so no binary noise leaks in.
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise ValueError(f"not an amount: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def format_if_modified_since(moment: datetime) -> str:
    """The header value Xero documents: a UTC timestamp accurate to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
