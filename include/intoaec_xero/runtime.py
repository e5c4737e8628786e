"""Where local state lives (raw pages), from the runtime settings, with defaults under the cwd."""

from __future__ import annotations

from pathlib import Path

from intoaec_xero.environment import RuntimeSettings, current


def data_dir(settings: RuntimeSettings | None = None) -> Path:
    """INTOAEC_DATA_DIR, else ./var under the working directory, resolved."""
    return (settings or current()).data_path()


def raw_dir(settings: RuntimeSettings | None = None) -> Path:
    """INTOAEC_RAW_DIR, else ``raw`` under :func:`data_dir`."""
    return (settings or current()).raw_path()
