"""The watermark never passes Xero's clock at the start of the read (plus a few minutes of skew).

A record stamped in 2100 is loaded, but does not become the watermark: If-Modified-Since from
it would skip every real edit until the weekly reconcile. A full read sets the watermark to what
it saw, even below the stored one, so a future watermark stored earlier heals.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from intoaec_xero import state
from intoaec_xero.extract import FUTURE_SKEW, WATERMARK_OVERLAP, extract_stream
from intoaec_xero.load import load_stream
from intoaec_xero.parsing import format_if_modified_since
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import clients, sync_state
from intoaec_xero.streams import get_stream
from sqlalchemy import select

from .quality.records import TENANT, contact
from .test_extract_paging import FakeXero

XERO_NOW = datetime(2025, 12, 2, 9, 0, tzinfo=UTC)
LAST_EDIT = datetime(2025, 12, 1, 17, 30, tzinfo=UTC)


def ms(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _sync(engine, tmp_path, records, run_id: str, *, full: bool = False, now: datetime = XERO_NOW):
    """One extract and load of contacts, as the pipeline runs them."""
    client = FakeXero({"Contacts": records}, serve=1000, now=ms(now))
    raw = RawStore(tmp_path / "raw")
    stream = get_stream("contacts")
    extracted = extract_stream(client, stream, TENANT, state.read_state(engine, TENANT, "contacts"), raw, run_id,
                               full=full)
    load_stream(engine, raw, run_id, TENANT, stream, extracted)
    return extracted, client


def _stored(engine) -> datetime | None:
    return state.read_state(engine, TENANT, "contacts").watermark


def test_a_record_dated_in_2100_is_loaded_but_does_not_become_the_watermark(engine, tmp_path, caplog):
    records = [contact(1, UpdatedDateUTC=ms(LAST_EDIT)),
               contact(2, UpdatedDateUTC=ms(datetime(2100, 1, 1, tzinfo=UTC))),
               contact(3, UpdatedDateUTC=ms(LAST_EDIT - timedelta(days=3)))]
    with caplog.at_level(logging.WARNING, logger="intoaec_xero.extract"):
        extracted, _ = _sync(engine, tmp_path, records, "run-1")
    assert extracted.max_cursor == LAST_EDIT.isoformat()
    assert extracted.extra["cursor_beyond_clock"]["records"] == 1
    assert _stored(engine) == LAST_EDIT
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert TENANT in warning and "stream contacts" in warning and "ContactID c-2" in warning and "2100" in warning
    with engine.connect() as conn:
        assert conn.execute(select(clients.c.contact_id).order_by(clients.c.contact_id)).scalars().all() == [
            "c-1", "c-2", "c-3"]

    # The next incremental read asks Xero for what changed since the real last edit, not since 2100.
    _, client = _sync(engine, tmp_path, [contact(1, UpdatedDateUTC=ms(LAST_EDIT))], "run-2")
    assert client.asked[0]["if_modified_since"] == format_if_modified_since(LAST_EDIT - WATERMARK_OVERLAP)


def test_the_cap_is_xeros_clock_at_the_start_of_the_read_plus_the_skew(engine, tmp_path):
    inside = XERO_NOW + FUTURE_SKEW - timedelta(seconds=1)  # Xero's clock and ours differ a little
    beyond = XERO_NOW + FUTURE_SKEW + timedelta(seconds=1)
    records = [contact(1, UpdatedDateUTC=ms(inside)), contact(2, UpdatedDateUTC=ms(beyond))]
    extracted, _ = _sync(engine, tmp_path, records, "run-1")
    assert extracted.max_cursor == inside.isoformat()


def test_a_full_read_heals_a_future_watermark_an_incremental_read_keeps(engine, tmp_path):
    future = datetime(2100, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:  # as stored before the cap existed
        state.advance(conn, TENANT, "contacts", watermark=future, journal_offset=None, full=True)
    assert _stored(engine) == future

    records = [contact(1, UpdatedDateUTC=ms(LAST_EDIT))]
    _sync(engine, tmp_path, records, "incremental")
    assert _stored(engine) == future  # an incremental read only moves it forward

    extracted, client = _sync(engine, tmp_path, records, "reconcile", full=True)
    assert "if_modified_since" not in client.asked[0] and extracted.full
    assert _stored(engine) == LAST_EDIT
    with engine.connect() as conn:
        full_at = conn.execute(select(sync_state.c.last_full_sync_at)).scalar_one()
    assert full_at is not None


def test_advance_moves_forward_when_incremental_and_to_what_was_seen_when_full(engine):
    early, late = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    steps = [(late, False, late), (early, False, late), (None, False, late), (early, True, early),
             (None, True, None)]
    for mark, full, expected in steps:
        with engine.begin() as conn:
            state.advance(conn, TENANT, "contacts", watermark=mark, journal_offset=None, full=full)
        assert _stored(engine) == expected, (mark, full)


@pytest.mark.parametrize("date_time_utc", [None, "not a date"])
def test_without_xeros_clock_the_cap_is_ours(tmp_path, date_time_utc):
    now = datetime.now(UTC)

    def no_clock(payload, params):
        payload["DateTimeUTC"] = date_time_utc

    records = [contact(1, UpdatedDateUTC=ms(now - timedelta(minutes=1))),
               contact(2, UpdatedDateUTC=ms(now + timedelta(hours=1)))]
    client = FakeXero({"Contacts": records}, serve=1000, tweak=no_clock)
    extracted = extract_stream(client, get_stream("contacts"), TENANT, state.StreamState(), RawStore(tmp_path),
                               "run", full=True)
    assert datetime.fromisoformat(extracted.max_cursor) < now
