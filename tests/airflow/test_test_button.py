"""The API-server middleware that lets Admin ▸ Connections' Test button test a Xero connection.

The browser test (tests/plugins/test_browser.py) clicks the real button; these pin what the
middleware changes and, as importantly, what it leaves alone.
"""

from __future__ import annotations

import json

import pytest
from intoaec_xero.airflow.test_button import TEST_PATH, XeroTestButtonFix, saved_under_test, without_unset_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

# What the connection list's Test button posts for a stored Xero connection (Airflow 3.3).
FROM_THE_LIST = {"conn_type": "xero", "connection_id": "xero_default", "description": "", "extra": "{}",
                 "host": "", "login": "client", "password": "***", "port": 0, "schema": ""}


def _echo_app() -> TestClient:
    async def echo(request: Request) -> JSONResponse:
        raw = await request.body()
        return JSONResponse({"body": json.loads(raw) if raw else None,
                             "length": request.headers.get("content-length"), "actual": len(raw)})

    app = Starlette(routes=[Route(TEST_PATH, echo, methods=["POST"]), Route("/api/v2/connections", echo,
                                                                             methods=["POST"])])
    return TestClient(XeroTestButtonFix(app))


def test_a_xero_test_from_the_list_reaches_airflow_without_the_port():
    answer = _echo_app().post(TEST_PATH, json=FROM_THE_LIST).json()
    assert answer["body"] == {k: v for k, v in FROM_THE_LIST.items() if k != "port"}
    assert int(answer["length"]) == answer["actual"]  # the length Airflow reads matches the new body


@pytest.mark.parametrize("body", [
    {**FROM_THE_LIST, "conn_type": "postgres"},  # another type: Airflow's own rules
    {**FROM_THE_LIST, "port": 443},  # a real port is the user's to test
    {k: v for k, v in FROM_THE_LIST.items() if k != "port"},
])
def test_other_bodies_pass_untouched(body):
    assert _echo_app().post(TEST_PATH, json=body).json()["body"] == body


def test_other_paths_and_bad_json_pass_untouched():
    client = _echo_app()
    assert client.post("/api/v2/connections", json=FROM_THE_LIST).json()["body"] == FROM_THE_LIST
    assert without_unset_port(b"not json") is None
    assert without_unset_port(b"[1, 2]") is None
    assert without_unset_port(json.dumps({**FROM_THE_LIST, "port": "0"}).encode()) is not None


def test_only_an_unchanged_saved_connection_is_named_to_the_hook():
    assert saved_under_test(json.dumps(FROM_THE_LIST).encode()) == "xero_default"
    assert saved_under_test(json.dumps({**FROM_THE_LIST, "password": "typed"}).encode()) is None
    assert saved_under_test(json.dumps({**FROM_THE_LIST, "conn_type": "http"}).encode()) is None
    assert saved_under_test(json.dumps({**FROM_THE_LIST, "connection_id": ""}).encode()) is None


def test_the_hook_sees_the_saved_id_only_while_that_request_runs():
    from intoaec_xero.airflow.connections import testing_saved
    from starlette.applications import Starlette

    seen = []

    async def record(request: Request) -> JSONResponse:
        seen.append(testing_saved.get())
        return JSONResponse({})

    client = TestClient(XeroTestButtonFix(Starlette(routes=[Route(TEST_PATH, record, methods=["POST"])])))
    client.post(TEST_PATH, json=FROM_THE_LIST)
    client.post(TEST_PATH, json={**FROM_THE_LIST, "password": "typed"})
    assert seen == ["xero_default", None] and testing_saved.get() is None


@pytest.mark.parametrize(("changed", "used"), [
    ({}, True),
    ({"api_base_url": "https://attacker.test/api.xro/2.0"}, False),
    ({"proxies": {"https": "http://attacker.test:3128"}}, False),
])
def test_the_hook_uses_the_saved_connection_only_for_a_field_for_field_copy(monkeypatch, changed, used):
    from intoaec_xero.airflow.connections import testing_saved
    from intoaec_xero.airflow.hooks import XeroHook

    saved = {"conn_type": "xero", "login": "client", "password": "secret",
             "extra": {"api_base_url": "http://127.0.0.1:9/api.xro/2.0", "identity_base_url": "http://127.0.0.1:9",
                       "sandbox": True}}
    copy = {**saved, "extra": {**saved["extra"], **changed}}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_SAVED", json.dumps(saved))
    monkeypatch.setenv("AIRFLOW_CONN_TMPCOPY1", json.dumps(copy))
    token = testing_saved.set("xero_saved")
    try:
        original = XeroHook(xero_conn_id="tmpcopy1")._saved_original()
    finally:
        testing_saved.reset(token)
    assert (original is not None and original.xero_conn_id == "xero_saved") is used
    assert XeroHook(xero_conn_id="tmpcopy1")._saved_original() is None  # outside a Test request
