"""Where local state lives (raw pages), from the environment, with defaults under the cwd."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("INTOAEC_DATA_DIR") or Path.cwd() / "var").resolve()


def raw_dir() -> Path:
    return Path(os.environ.get("INTOAEC_RAW_DIR") or data_dir() / "raw")
