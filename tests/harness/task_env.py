"""The environment a DAG's task functions find in a worker, for calling them in-process:
IntoAEC's database as the ``intoaec_db`` connection, the data directory, a Xero connection."""

from __future__ import annotations

import json


def task_database(tmp_path, monkeypatch):
    """A migrated SQLite IntoAEC database, named by ``AIRFLOW_CONN_INTOAEC_DB``; raw pages under tmp_path."""
    from intoaec_xero import db

    url = f"sqlite:///{tmp_path / 'intoaec.db'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", json.dumps({"conn_type": "generic",
                                                              "extra": {"sqlalchemy_url": url}}))
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    return engine


def sandbox_connection(monkeypatch, conn_id: str, sandbox, **extra) -> None:
    """``AIRFLOW_CONN_<CONN_ID>``: the sandbox's demo app, unpaced unless ``extra`` says otherwise."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
        "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
        "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                  "sandbox": True, "calls_per_minute": "0", **extra}}))
