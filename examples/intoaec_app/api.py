"""The connect API as IntoAEC's back end calls it: four calls, one bearer token, errors as ``ApiError``.

The token is the password of the Airflow connection ``intoaec_app``. It is held here and sent in
the ``Authorization`` header only; it is never logged, shown, or put in a ``repr``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class ApiError(Exception):
    """What the connect API refused (its ``code`` and sentence), or that it could not be reached."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ConnectApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                                  timeout=timeout, follow_redirects=False, transport=transport)

    def __repr__(self) -> str:
        return f"ConnectApi({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- the four calls ---------------------------------------------------------------------

    def start_session(self, firm_id: str, return_url: str) -> dict[str, Any]:
        """``{"session_id", "authorize_url", "expires_at"}``: send the browser to authorize_url."""
        return self._call("POST", f"/firms/{_segment(firm_id)}/connect-sessions", {"return_url": return_url})

    def firm(self, firm_id: str) -> dict[str, Any]:
        """``{"firm_id", "organisations": [...]}`` (no organisations until the firm connects)."""
        return self._call("GET", f"/firms/{_segment(firm_id)}")

    def disconnect(self, firm_id: str, tenant_id: str) -> dict[str, Any]:
        return self._call("POST", f"/firms/{_segment(firm_id)}/organisations/{_segment(tenant_id)}/disconnect")

    def set_sync(self, firm_id: str, tenant_id: str, enabled: bool) -> dict[str, Any]:
        return self._call("PUT", f"/firms/{_segment(firm_id)}/organisations/{_segment(tenant_id)}/sync",
                          {"enabled": enabled})

    # -- the wire ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            answer = self._http.request(method, self.base_url + path, json=body)
        except httpx.HTTPError as error:
            raise ApiError("api_unreachable", f"IntoAEC could not reach the Xero connect API at {self.base_url} "
                                              f"({type(error).__name__}).") from None
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.is_success and isinstance(data, dict):
            return data
        detail = data.get("error") if isinstance(data, dict) else None
        if isinstance(detail, dict) and detail.get("message"):
            raise ApiError(str(detail.get("code") or "error"), str(detail["message"]), answer.status_code)
        raise ApiError("unexpected_answer", f"The Xero connect API answered HTTP {answer.status_code} without an "
                                            "error IntoAEC could read.", answer.status_code)


def _segment(value: str) -> str:
    return quote(value, safe="")
