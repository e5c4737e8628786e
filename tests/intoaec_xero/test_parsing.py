import random
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from intoaec_xero.parsing import (
    format_if_modified_since,
    loads,
    parse_count,
    parse_date,
    parse_datetime,
    parse_money,
)


def test_every_amount_xero_can_send_comes_back_to_the_digit():
    rng = random.Random(7)
    texts = []
    for _ in range(20_000):
        places = rng.choice((0, 1, 2, 4))
        whole = rng.choice((0, rng.randrange(10), rng.randrange(10**6), rng.randrange(10**11)))
        sign = rng.choice(("", "-"))
        texts.append(f"{sign}{whole}" + (f".{rng.randrange(10**places):0{places}d}" if places else ""))
    payload = loads(("[" + ",".join(texts) + "]").encode())
    assert [parse_money(v) for v in payload] == [Decimal(t) for t in texts]


def test_numbers_longer_than_a_double_holds_are_read_from_their_text():
    # Through a float these would come back as 1000000000000000 and 0.1.
    payload = loads(b'{"Total": 1000000000000000.01, "Rate": 0.10000000000000001}')
    assert parse_money(payload["Total"]) == Decimal("1000000000000000.01")
    assert parse_money(payload["Rate"]) == Decimal("0.10000000000000001")


def test_what_the_fast_parser_refuses_is_left_to_the_standard_one():
    assert parse_money(loads(b'{"Big": 123456789012345678901234567890}')["Big"]) == Decimal(
        "123456789012345678901234567890")
    with pytest.raises(ValueError, match="Expecting"):
        loads(b'{"Invoices": [{"Total": 1.5}')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1518685950940+0000)/", datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)),
        ("/Date(1518685950940)/", datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)),
        # The suffix records the organisation's zone; the milliseconds are already UTC.
        ("/Date(1451988985943+1300)/", datetime(2016, 1, 5, 10, 16, 25, 943000, tzinfo=UTC)),
        ("/Date(1451988985943-0500)/", datetime(2016, 1, 5, 10, 16, 25, 943000, tzinfo=UTC)),
        ("/Date(-80006400000+0000)/", datetime(1967, 6, 20, tzinfo=UTC)),
        ("/Date(0+0000)/", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2019-01-02T03:04:05", datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-02-06T12:17:43.202-08:00", datetime(2020, 2, 6, 20, 17, 43, 202000, tzinfo=UTC)),
    ],
)
def test_parse_datetime_is_utc(raw, expected):
    parsed = parse_datetime(raw)
    assert parsed == expected
    assert parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1539993600000+0000)/", date(2018, 10, 20)),
        ("/Date(-80006400000+0000)/", date(1967, 6, 20)),
        # a date near midnight stays on its UTC day, never shifted by a local zone
        ("/Date(1546128000000+1300)/", date(2018, 12, 30)),
        (None, None),
        ("", None),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["/Date(abc)/", "yesterday", 12345, "/Date(1518685950940+00)/"])
def test_parse_datetime_rejects_garbage(raw):
    with pytest.raises(ValueError, match="not a Xero date"):
        parse_datetime(raw)


@pytest.mark.parametrize("raw", ["/Date(99999999999999999999)/", "/Date(-99999999999999999999+0000)/",
                                 "/Date(253402300800000)/", "9999-12-31T23:00:00-05:00"])
def test_a_date_past_what_a_datetime_holds_is_a_value_error(raw):
    with pytest.raises(ValueError, match=r"not a Xero date \(out of range\)"):
        parse_datetime(raw)
    with pytest.raises(ValueError, match="not a Xero date"):
        parse_date(raw)


@pytest.mark.parametrize(("raw", "expected"), [(0, 0), (3, 3), (250, 250), (4.0, 4), (Decimal("7"), 7), ("12", 12)])
def test_parse_count_reads_whole_numbers(raw, expected):
    assert parse_count(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "3 pages", "1e3", "-1", -1, 2.5, float("nan"), float("inf"), True,
                                 Decimal("1.5"), [3], {"n": 3}, "١٢"])
def test_parse_count_rejects_everything_else(raw):
    with pytest.raises(ValueError, match="not a whole number"):
        parse_count(raw)


def test_money_is_exact_from_json_text():
    payload = loads(b'{"Total": 0.1, "Sub": 1234567890123.45, "Unit": 12.3456, "Zero": 0.00, "Int": 7}')
    assert parse_money(payload["Total"]) == Decimal("0.1")
    assert parse_money(payload["Sub"]) == Decimal("1234567890123.45")
    assert parse_money(payload["Unit"]) == Decimal("12.3456")
    assert parse_money(payload["Zero"]) == Decimal("0")
    assert parse_money(payload["Int"]) == Decimal(7)
    # the classic float trap: 0.1 + 0.2 must be exactly 0.3
    assert parse_money(loads(b"0.1")) + parse_money(loads(b"0.2")) == Decimal("0.3")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.50", Decimal("12.50")), (" -3.10 ", Decimal("-3.10")), (0.1, Decimal("0.1")), (None, None), ("", None)],
)
def test_parse_money_accepts_numbers_and_numeric_strings(raw, expected):
    assert parse_money(raw) == expected


@pytest.mark.parametrize("raw", ["12,50", "NaN", "Infinity", True, [1], "abc"])
def test_parse_money_rejects_non_amounts(raw):
    with pytest.raises(ValueError, match="not an amount"):
        parse_money(raw)


def test_if_modified_since_is_utc_to_the_second():
    moment = datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)
    assert format_if_modified_since(moment) == "2024-01-02T03:04:05"
