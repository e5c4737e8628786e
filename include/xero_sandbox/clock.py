"""The sandbox clock.

Everything time-dependent in the sandbox (token lifetimes, refresh grace windows, code expiry,
rate-limit windows, the stamps on records changed by activity) reads this clock instead of the
wall clock, so a test can jump hours or days ahead with one control call instead of sleeping.
It still ticks with real time between jumps, because clients measure timeouts in real seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: Generated books end here; the clock never starts earlier, so every generated record
#: (and every journal's CreatedDateUTC) sits strictly before "now".
DATA_END_MS = int(datetime(2026, 10, 31, 23, 0, tzinfo=UTC).timestamp() * 1000)


class SandboxClock:
    def __init__(self, start_ms: int | None = None) -> None:
        real_now = int(time.time() * 1000)
        if start_ms is not None and start_ms <= DATA_END_MS:
            raise ValueError(f"the sandbox clock must start after the generated books end ({ms_to_iso(DATA_END_MS)})")
        self._start_ms = start_ms if start_ms is not None else max(real_now, DATA_END_MS + 86_400_000)
        self._mono0 = time.monotonic()
        self._offset_ms = 0

    def now_ms(self) -> int:
        return self._start_ms + int((time.monotonic() - self._mono0) * 1000) + self._offset_ms

    def now_s(self) -> float:
        return self.now_ms() / 1000.0

    def advance(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset_ms += int(seconds * 1000)
        return self.now_ms()

    def iso(self) -> str:
        return ms_to_iso(self.now_ms())


def ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
