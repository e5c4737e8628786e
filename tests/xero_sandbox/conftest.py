"""Fixtures for the sandbox tests.

One shared small sandbox (limits off) serves the read-only tests; tests that move the clock,
change the books or exhaust limits start their own, because those effects are global to a
sandbox process. Starting one takes well under a second for ``small``.
"""

from __future__ import annotations

import os

import pytest
import requests
from xero_sandbox.testing import running_sandbox

os.environ.setdefault("TZ", "UTC")


class Api:
    """A connected app: a token response plus a GET helper for the Accounting API."""

    def __init__(self, sb, token: dict) -> None:
        self.sb = sb
        self.token = token
        self.session = requests.Session()
        self.tenants = [c["tenantId"] for c in self.connections()]

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token['access_token']}", "Accept": "application/json"}

    def connections(self) -> list[dict]:
        r = self.session.get(self.sb.base_url + "/connections", headers=self.auth(), timeout=30)
        r.raise_for_status()
        return r.json()

    def get(self, path: str, tenant: str | None = "first", params=None, headers=None, timeout=60):
        h = self.auth()
        if tenant == "first":
            tenant = self.tenants[0]
        if tenant is not None:
            h["xero-tenant-id"] = tenant
        h.update(headers or {})
        return self.session.get(f"{self.sb.base_url}/api.xro/2.0/{path}", params=params, headers=h, timeout=timeout)

    def all_pages(self, entity: str, tenant: str, params=None, page_size: int = 1000) -> list[dict]:
        out, page = [], 1
        while True:
            r = self.get(entity, tenant, params={**(params or {}), "page": page, "pageSize": page_size})
            assert r.status_code == 200, r.text[:300]
            items = r.json()[entity]
            if not items:
                return out
            out += items
            page += 1

    def all_journals(self, tenant: str) -> list[dict]:
        out, offset = [], 0
        while True:
            r = self.get("Journals", tenant, params={"offset": offset})
            assert r.status_code == 200, r.text[:300]
            items = r.json()["Journals"]
            if not items:
                return out
            out += items
            offset = items[-1]["JournalNumber"]


@pytest.fixture(scope="session")
def small():
    with running_sandbox("small", seed=1, limits=False) as sb:
        yield sb


@pytest.fixture(scope="session")
def api(small) -> Api:
    return Api(small, small.connect())


@pytest.fixture(scope="session")
def medium():
    with running_sandbox("medium", seed=1, limits=False) as sb:
        yield sb


@pytest.fixture(scope="session")
def medium_api(medium) -> Api:
    return Api(medium, medium.connect())


@pytest.fixture
def fresh():
    """A private small sandbox (limits on) for tests that change global state."""
    with running_sandbox("small", seed=1, limits=True) as sb:
        yield sb


@pytest.fixture
def make_api():
    return Api
