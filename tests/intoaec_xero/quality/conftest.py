"""Quality tests write Data Docs and raw pages under their own temporary data directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("INTOAEC_RAW_DIR", str(tmp_path / "var" / "raw"))
    yield tmp_path / "var"
