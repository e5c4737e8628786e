"""Xero's wire formats to Python values, exactly.

Xero sends dates as MS-JSON (``/Date(1518685950940+0000)/``: epoch milliseconds, an optional
offset that does not change the instant, negative before 1970) and money as JSON numbers.

Money is exact. :func:`loads` parses with orjson (several times faster than the standard
library) whenever that is provably lossless: a number written with at most 15 significant
digits survives the trip through a binary float, and ``repr`` gives back its shortest form,
which has the same value (IEEE 754 doubles carry 15 decimal digits). A page holding any
longer digit run is parsed from its text with ``parse_float=Decimal`` instead.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

try:
    import orjson
    _HAS_ORJSON = True
except ImportError:  # pragma: no cover - a pinned dependency; the standard library is the fallback
    _HAS_ORJSON = False

# A run of 16+ digits or dots anywhere (a number with more significant digits than a double
# carries, or just a long digit string, which costs only the slower parse). Mapping every byte
# to "digit or not" and searching for the run is several times quicker than a regex.
_DIGIT_OR_DOT = bytes(0x31 if chr(i).isdigit() and i < 128 or i == 0x2E else 0x30 for i in range(256))
_LONG_RUN = b"1" * 16


def _has_long_digit_run(data: bytes) -> bool:
    return data.translate(_DIGIT_OR_DOT).find(_LONG_RUN) >= 0
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def loads(payload: bytes | str) -> Any:
    """Parse a Xero JSON body keeping every number exact.

    Numbers come back as ``int``, as ``float`` where the float holds exactly the digits Xero
    sent (see the module's note; :func:`parse_money` turns them into that Decimal), or as
    ``Decimal``. Anything orjson refuses (NaN, huge integers, bad UTF-8) goes to the standard
    parser, so what is accepted and every error message stay the standard library's.
    """
    if _HAS_ORJSON:
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        if not _has_long_digit_run(data):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
    return json.loads(payload, parse_float=Decimal)


def loads_approximate(payload: bytes | str) -> Any:
    """Parse a body for paging only (counts, ids, cursors): floats may round; never for money."""
    if _HAS_ORJSON:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload)


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
    return _parse_date_text(value)


@lru_cache(maxsize=1 << 16)
def _parse_date_text(value: str) -> datetime:
    # Dates repeat a lot (every line of a journal, every invoice of a day); datetimes are immutable.
    match = _MS_DATE.match(value)
    try:
        if match:
            return _EPOCH + timedelta(milliseconds=int(match.group(1)))
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:  # e.g. /Date(99999999999999999999)/: past what a datetime holds
        raise ValueError(f"not a Xero date (out of range): {value!r}") from None
    except ValueError:
        raise ValueError(f"not a Xero date: {value!r}") from None


def parse_date(value: Any) -> date | None:
    """A Xero calendar date (invoice Date, DueDate, JournalDate).

    Xero encodes these as midnight UTC of the organisation-local date, so the UTC date is the
    date; converting to any local zone would shift it by a day.
    """
    moment = parse_datetime(value)
    return None if moment is None else moment.date()


def parse_money(value: Any) -> Decimal | None:
    """An exact decimal from a JSON number or numeric string; ``None`` stays ``None``."""
    if type(value) is float:  # the common case, first
        result = Decimal(repr(value))
        if not result.is_finite():
            raise ValueError(f"not an amount: {value!r}")
        return result
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # From loads' fast path: repr is the shortest string that round-trips, i.e. exactly
        # the (at most 15-digit) number Xero wrote.
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


def parse_count(value: Any) -> int:
    """A whole number >= 0 from JSON (a page count, a JournalNumber); anything else is a ValueError.

    Paging decides how many calls to make from these, so ``12.5``, ``"3 pages"``, ``true`` or
    ``-1`` must stop the read rather than be rounded into a guess.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a whole number: {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        result = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        result = int(value.strip())
    else:
        raise ValueError(f"not a whole number: {value!r}")
    if result < 0:
        raise ValueError(f"not a whole number: {value!r}")
    return result


def format_if_modified_since(moment: datetime) -> str:
    """The header value Xero documents: a UTC timestamp accurate to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
