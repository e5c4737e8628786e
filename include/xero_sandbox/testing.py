"""Helpers for tests and scripts: run a sandbox in a subprocess, and play the user at consent.

``running_sandbox`` starts ``python -m xero_sandbox`` on a free port, waits until
``/_sandbox/health`` answers (failing with the process's stderr if it dies or hangs) and stops
it by PID on exit. ``sign_in_and_consent`` is a scripted user: it fills in the sandbox's own
sign-in and consent forms with ``requests`` and returns the redirect the browser would follow,
without following it, so headless connect flows can hand the URL to their callback handler.
``firm_user(i)`` gives the sign-in of the user who sees only the organisation at index ``i``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

DEMO_CLIENT_ID = "sandbox-client"
DEMO_CLIENT_SECRET = "sandbox-secret"
#: A second app of the same developer on Xero's Core tier: everything but Journals.
CORE_CLIENT_ID = "sandbox-client-core"
CORE_CLIENT_SECRET = "sandbox-secret-core"
DEMO_EMAIL = "demo@intoaec.test"
DEMO_PASSWORD = "sandbox"
#: Every firm user's password (see ``firm_user``).
FIRM_PASSWORD = "sandbox"
#: Broad read scopes (what apps created before March 2026 ask for).
DEFAULT_SCOPES = ("openid profile email offline_access accounting.transactions.read accounting.contacts.read "
                  "accounting.settings.read accounting.journals.read accounting.reports.read")
#: The 2026 granular read scopes.
GRANULAR_SCOPES = ("offline_access accounting.invoices.read accounting.payments.read accounting.contacts.read "
                   "accounting.settings.read accounting.journals.read accounting.reports.trialbalance.read")


def firm_user(index: int) -> tuple[str, str]:
    """(email, password) of the user who sees only the organisation at 0-based ``index``
    (``/connections`` and ``health()["tenants"]`` order): one firm, one sign-in, one grant."""
    if index < 0:
        raise ValueError("firm index is 0-based and >= 0")
    return f"firm{index + 1}@intoaec.test", FIRM_PASSWORD


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SandboxHandle:
    base_url: str
    pid: int
    process: subprocess.Popen

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _ok(self, resp: requests.Response) -> dict:
        resp.raise_for_status()
        return resp.json()

    def health(self) -> dict:
        return self._ok(requests.get(self._url("/_sandbox/health"), timeout=10))

    def truth(self) -> dict:
        return self._ok(requests.get(self._url("/_sandbox/truth"), timeout=60))

    def stats(self) -> dict:
        return self._ok(requests.get(self._url("/_sandbox/stats"), timeout=10))

    def reset_stats(self) -> dict:
        return self._ok(requests.delete(self._url("/_sandbox/stats"), timeout=10))

    def advance_clock(self, seconds: float) -> dict:
        return self._ok(requests.post(self._url("/_sandbox/clock"), json={"advance_seconds": seconds}, timeout=10))

    def clock(self) -> dict:
        return self._ok(requests.get(self._url("/_sandbox/clock"), timeout=10))

    def activity(self, invoices: int = 0, payments: int = 0, tenant_id: str | None = None, **costs: int) -> dict:
        """Change the books; ``costs``: cost-side streams (bank_transactions=N, manual_journals=N,
        purchase_orders=N, prepayments=N, overpayments=N, linked_transactions=N; none named: each
        gets a fifth of ``invoices``) and bank_transfers=N, payslips=N (0 unless named)."""
        body: dict[str, int | str] = {"invoices": invoices, "payments": payments, **costs}
        if tenant_id:
            body["tenant_id"] = tenant_id
        return self._ok(requests.post(self._url("/_sandbox/activity"), json=body, timeout=120))

    def faults(self, **spec) -> dict:
        return self._ok(requests.post(self._url("/_sandbox/faults"), json=spec, timeout=10))

    def clear_faults(self) -> dict:
        return self._ok(requests.delete(self._url("/_sandbox/faults"), timeout=10))

    def expire_grants(self, email: str, client_id: str | None = None) -> dict:
        """Lapse the user's grants (of ``client_id`` only, if given) as 60 days unused would:
        refreshes answer invalid_grant, access tokens 401, connections stay. ``{"expired_grants": N}``."""
        body = {"email": email} if client_id is None else {"email": email, "client_id": client_id}
        return self._ok(requests.post(self._url("/_sandbox/grants/expire"), json=body, timeout=10))

    def set_max_page_size(self, max_page_size: int | None) -> dict:
        """Serve at most N rows a page (and Journals per call) from now on; None restores Xero's limits."""
        return self._ok(requests.post(self._url("/_sandbox/paging"), json={"max_page_size": max_page_size},
                                      timeout=10))

    def connect(self, scope: str = DEFAULT_SCOPES, tenant_ids: Sequence[str] | None = None,
                redirect_uri: str = "http://127.0.0.1:8976/callback", client_id: str = DEMO_CLIENT_ID,
                client_secret: str = DEMO_CLIENT_SECRET, email: str = DEMO_EMAIL,
                password: str = DEMO_PASSWORD) -> dict:
        """Sign in, consent and exchange the code: the token response as the app would store it.
        ``client_id``/``client_secret``: which demo app connects (``CORE_CLIENT_ID``: no Journals);
        ``email``/``password``: who signs in (``firm_user(i)``: one organisation only)."""
        location = sign_in_and_consent(self.authorize_url(redirect_uri, scope, client_id=client_id),
                                       email=email, password=password, tenant_ids=tenant_ids)
        code = parse_qs(urlsplit(location).query)["code"][0]
        r = requests.post(self._url("/connect/token"), data={"grant_type": "authorization_code", "code": code,
                                                             "redirect_uri": redirect_uri},
                          auth=(client_id, client_secret), timeout=30)
        return self._ok(r)

    def authorize_url(self, redirect_uri: str, scope: str, state: str = "state", client_id: str = DEMO_CLIENT_ID,
                      **extra: str) -> str:
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                  "scope": scope, "state": state, **extra}
        return self._url("/identity/connect/authorize?" + urlencode(params))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_sandbox(dataset: str = "small", seed: int = 1, limits: bool = True,
                    extra_args: Sequence[str] = (), startup_timeout: float = 180.0,
                    app_without_journals: bool = False) -> Iterator[SandboxHandle]:
    """Start ``python -m xero_sandbox`` on a free 127.0.0.1 port; yield a handle; stop it by PID.

    ``app_without_journals``: the demo app is refused Journals for every organisation
    (``--app-without-journals``), as an app below Xero's Advanced tier is."""
    port = free_port()
    cmd = [sys.executable, "-m", "xero_sandbox", "--host", "127.0.0.1", "--port", str(port),
           "--dataset", dataset, "--seed", str(seed)]
    if not limits:
        cmd.append("--no-limits")
    if app_without_journals:
        cmd.append("--app-without-journals")
    cmd += list(extra_args)
    env = dict(os.environ, TZ="UTC", PYTHONUNBUFFERED="1")
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    base = f"http://127.0.0.1:{port}"
    handle = SandboxHandle(base_url=base, pid=proc.pid, process=proc)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                stderr.seek(0)
                err = stderr.read().decode(errors="replace")
                raise RuntimeError(f"xero sandbox exited with code {proc.returncode} before becoming healthy:\n"
                                   f"{err[-4000:]}")
            try:
                if requests.get(base + "/_sandbox/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                stderr.seek(0)
                err = stderr.read().decode(errors="replace")
                raise RuntimeError(f"xero sandbox did not become healthy within {startup_timeout:.0f}s "
                                   f"(pid {proc.pid}):\n{err[-4000:]}")
            time.sleep(0.05)
        yield handle
    finally:
        _stop(proc)
        stderr.close()


# ----------------------------------------------------------------------------- scripted user

class _Forms(HTMLParser):
    """Collects forms: action, method, and their input/button fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {"action": a.get("action", ""), "method": (a.get("method") or "get").lower(),
                             "inputs": [], "buttons": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current["inputs"].append(a)
        elif self._current is not None and tag == "button":
            self._current["buttons"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


class ConsentError(RuntimeError):
    pass


def _form(html: str, form_id_hint: str) -> dict:
    parser = _Forms()
    parser.feed(html)
    for f in parser.forms:
        if form_id_hint in f["action"]:
            return f
    raise ConsentError(f"no {form_id_hint} form on the page")


def sign_in_and_consent(authorize_url: str, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD,
                        tenant_ids: Sequence[str] | None = None, approve: bool = True,
                        timeout: float = 30.0) -> str:
    """Drive the sandbox's sign-in and consent pages; return the final redirect URL.

    The result is ``redirect_uri?code=...&state=...`` (or ``?error=access_denied&state=...`` when
    ``approve`` is False); the redirect URI itself is never requested. Raises ``ConsentError``
    when the sandbox shows an error page (unknown client, bad redirect URI or scope) or the
    credentials are refused.
    """
    s = requests.Session()
    r = s.get(authorize_url, timeout=timeout, allow_redirects=False)
    page_url = authorize_url
    if r.status_code in (302, 303):  # already signed in on this session
        page_url = urljoin(authorize_url, r.headers["Location"])
        r = s.get(page_url, timeout=timeout)
    if r.status_code != 200:
        raise ConsentError(f"authorize page answered {r.status_code}: {_text(r.text)}")
    if "/identity/connect/login" in r.text:
        login = _form(r.text, "/identity/connect/login")
        fields = {i["name"]: i.get("value", "") for i in login["inputs"] if i.get("name")}
        fields.update({"email": email, "password": password})
        r = s.post(urljoin(page_url, login["action"]), data=fields, timeout=timeout, allow_redirects=False)
        if r.status_code in (302, 303):
            page_url = urljoin(page_url, r.headers["Location"])
            r = s.get(page_url, timeout=timeout)
        elif "/identity/connect/login" in r.text:
            raise ConsentError("sign-in refused: " + _text(r.text))
    if r.status_code != 200 or "/identity/connect/consent" not in r.text:
        raise ConsentError(f"expected the consent page, got {r.status_code}: {_text(r.text)}")
    consent = _form(r.text, "/identity/connect/consent")
    data: list[tuple[str, str]] = []
    offered = []
    for i in consent["inputs"]:
        name = i.get("name")
        if not name:
            continue
        if i.get("type") == "checkbox" and name == "tenant":
            offered.append(i.get("value", ""))
            continue
        data.append((name, i.get("value", "")))
    chosen = offered if tenant_ids is None else [t for t in offered if t in set(tenant_ids)]
    if tenant_ids is not None and len(chosen) != len(set(tenant_ids)):
        missing = set(tenant_ids) - set(offered)
        raise ConsentError(f"organisations not offered on the consent page: {sorted(missing)}")
    data += [("tenant", t) for t in chosen]
    data.append(("decision", "allow" if approve else "deny"))
    r = s.post(urljoin(page_url, consent["action"]), data=data, timeout=timeout, allow_redirects=False)
    if r.status_code not in (302, 303):
        raise ConsentError(f"consent answered {r.status_code}: {_text(r.text)}")
    return r.headers["Location"]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()[:500]
