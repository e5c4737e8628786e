"""The Xero client the pipeline uses: Airflow-free, built on the official xero-python SDK.

The SDK carries the OAuth token handling and the endpoint signatures; this module adds what
the SDK leaves out: a single-writer token refresh (see :mod:`intoaec_xero.tokens`), a
(connect, read) timeout on every HTTP call including the token endpoint's, one place that
classifies every HTTP failure as retriable or fatal, one retry policy for API and token calls
alike, ``Retry-After``, backoff, quota headers, and exact JSON parsing. Responses are read raw
(``_preload_content=False``) because the SDK's strict enum models abort a whole page on a
value Xero added after the SDK shipped.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import ApiException, HTTPStatusException
from xero_python.identity import IdentityApi
from xero_python.rest import RESTClientObject

from intoaec_xero.errors import (
    ConfigurationError,
    XeroAccessDenied,
    XeroAuthError,
    XeroBadResponse,
    XeroDailyLimitReached,
    XeroError,
    XeroRateLimited,
    XeroUnavailable,
)
from intoaec_xero.limits import LimitPolicy, TenantLimiter
from intoaec_xero.parsing import loads_approximate
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenSet, TokenStore

log = logging.getLogger(__name__)

# A worker slot is never held longer than this waiting on one Retry-After.
MAX_RETRY_WAIT_SECONDS = 120.0
TOKEN_LABEL = "POST /connect/token"


@dataclass
class Response:
    """One Xero answer: the parsed JSON (numbers as floats: for paging only), the raw bytes
    (kept for the load, which parses them exactly) and the headers."""

    payload: Any
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class CallStats:
    """What a client spent, for sync_runs and the logs."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    quota: dict[str, dict[str, int]] = field(default_factory=dict)

    def note_quota(self, tenant_id: str | None, headers: dict[str, str]) -> None:
        if not tenant_id:
            return
        seen = {}
        for header, key in (
            ("x-daylimit-remaining", "day_remaining"),
            ("x-minlimit-remaining", "minute_remaining"),
            ("x-appminlimit-remaining", "app_minute_remaining"),
        ):
            value = headers.get(header)
            if value is not None and str(value).lstrip("-").isdigit():
                seen[key] = int(value)
        if seen:
            self.quota[tenant_id] = seen


class _TimedRESTClient(RESTClientObject):
    """The SDK's HTTP client with a (connect, read) timeout on every call.

    xero-python sends ``timeout=None`` to urllib3 unless a call passes ``_request_timeout``
    (an int or a 2-tuple; a float is silently dropped), and its token calls (refresh, client
    credentials, revocation) cannot pass one at all: ``None`` overrides any pool default, so
    a server that accepts and never answers would hang the call, and the token row lock, forever.
    """

    def __init__(self, configuration, timeout: tuple[float, float]):
        super().__init__(configuration)
        self.default_timeout = timeout

    def request(self, *args, _request_timeout=None, **kwargs):
        if not (isinstance(_request_timeout, tuple) and len(_request_timeout) == 2) \
                and not (isinstance(_request_timeout, int) and _request_timeout > 0):
            _request_timeout = self.default_timeout
        return super().request(*args, _request_timeout=_request_timeout, **kwargs)


class _StoreBackedToken(OAuth2Token):
    """xero-python's token object, refreshing through the token store's lock."""

    def __init__(self, client: XeroClient):
        super().__init__(client.settings.client_id, client.settings.client_secret)
        self._client = client

    def can_refresh_access_token(self) -> bool:
        return True

    def refresh_access_token(self, api_client) -> bool:
        self._client.refresh_tokens(force=False)
        self.update_token(**self._client.current_tokens().to_sdk())
        return True


class XeroClient:
    """Talks to one Xero app grant (one Airflow ``xero`` connection) for all its tenants.

    Use one client per thread: the SDK's ``ApiClient`` keeps per-call state.
    """

    def __init__(
        self,
        settings: XeroSettings,
        store: TokenStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        limiter: TenantLimiter | None = None,
    ):
        self.settings = settings
        self.store = store
        self.stats = CallStats()
        self._sleep = sleep
        self.limiter = limiter or TenantLimiter(LimitPolicy(per_minute=settings.calls_per_minute), sleep=sleep)
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None

        configuration = Configuration()  # a fresh token object per client: the SDK shares them otherwise
        configuration.oauth2_token = _StoreBackedToken(self)
        self._api_client = ApiClient(configuration, pool_threads=1)
        self._api_client.rest_client = _TimedRESTClient(configuration, settings.http_timeout)
        # urllib3 would otherwise retry 429/503 on its own (honouring Retry-After inside the
        # call), hiding them from the one place that classifies, counts and paces retries.
        self._api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        self._api_client.rest_client.pool_manager.clear()
        self._api_client.oauth2_token_getter(lambda: self.current_tokens().to_sdk())
        self._api_client.oauth2_token_saver(lambda token: None)  # the store already committed it
        self.accounting = AccountingApi(self._api_client, base_url=settings.api_base_url)
        self.identity = IdentityApi(self._api_client, base_url=settings.connections_base_url)

    # -- tokens ----------------------------------------------------------------------------
    def current_tokens(self) -> TokenSet:
        if self._tokens is None:
            stored = self.store.load()
            if stored is None:
                if self.settings.grant_type == "client_credentials":
                    self._tokens = self._client_credentials_token()
                    self.store.save(self._tokens)
                    return self._tokens
                raise XeroAuthError(
                    f"Xero is not connected for '{self.settings.connection_key}': run "
                    "`intoaec-xero connect` or use the Xero page in the Airflow UI."
                )
            self._tokens = stored
        return self._tokens

    def refresh_tokens(self, force: bool) -> TokenSet:
        """A fresh token set through the store's single-writer lock, retrying passing failures.

        Each attempt takes the lock, re-reads the stored set and makes one bounded call, so the
        lock is never held across a backoff. An attempt after a lost answer (a timeout or a cut
        transfer after Xero rotated) sends the same, now previous, refresh token again: Xero
        accepts it for 30 minutes, which is what recovers the rotation within this run.
        """
        with self._lock:
            stale = self._tokens
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._tokens = self.store.refresh(stale, self._fetch_new_tokens, force=force)
                    break
                except XeroError as failure:
                    self._retry_or_raise(failure, attempt, TOKEN_LABEL)
            if self._tokens is not stale:
                self.stats.token_refreshes += 1
            return self._tokens

    def _fetch_new_tokens(self, current: TokenSet) -> TokenSet:
        if self.settings.grant_type == "client_credentials" or not current.refresh_token:
            return self._client_credentials_token()
        token_api = TokenApi(self._api_client, self.settings.client_id, self.settings.client_secret)
        token_api.refresh_token_url = self.settings.token_url  # per instance: no process-wide patch
        scope = list(current.scope or self.settings.scopes)
        return self._token_call(lambda: token_api.refresh_token(current.refresh_token, scope))

    def _client_credentials_token(self) -> TokenSet:
        token_api = TokenApi(self._api_client, self.settings.client_id, self.settings.client_secret)
        token_api.client_credentials_token_url = self.settings.token_url
        return self._token_call(lambda: token_api.get_client_credentials_token(False))

    def _token_call(self, call: Callable[[], dict]) -> TokenSet:
        """One POST to the token endpoint, every failure classified (the SDK's timeout included)."""
        issued = time.time()
        try:
            data = call()
        except ValueError:  # a body cut short without a length: not JSON (UnicodeDecodeError too)
            raise XeroBadResponse(f"{TOKEN_LABEL}: Xero's answer was not complete JSON.",
                                  endpoint=TOKEN_LABEL) from None
        except HTTPStatusException as error:
            detail = _error_detail(error.body)
            if error.status == 400 and "invalid_grant" in detail:
                raise XeroAuthError(
                    f"Xero refused the stored refresh token for '{self.settings.connection_key}' "
                    "(invalid_grant): the grant expired or was revoked. Reconnect Xero.",
                    status=400,
                ) from None
            if error.status in (400, 401) and "invalid_client" in detail:
                raise XeroAuthError(
                    f"Xero rejected the client id/secret of '{self.settings.connection_key}' "
                    "(invalid_client): check the connection's Client ID and Client Secret.",
                    status=error.status,
                ) from None
            raise _classify(error, TOKEN_LABEL) from None
        except urllib3.exceptions.HTTPError as error:  # timeouts, resets, a transfer cut half-way
            raise XeroUnavailable(
                f"No answer from Xero's token endpoint at {self.settings.token_url}: {_reason(error)}.",
                endpoint=TOKEN_LABEL,
            ) from None
        except ApiException as error:  # SSL and request-preparation failures
            raise XeroUnavailable(f"{TOKEN_LABEL}: {error.reason}", endpoint=TOKEN_LABEL) from None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise XeroBadResponse(f"{TOKEN_LABEL}: Xero's answer carries no access token.", endpoint=TOKEN_LABEL)
        return TokenSet.from_response(data, now=issued)

    # -- API calls -----------------------------------------------------------------------------
    def connections(self) -> list[dict[str, Any]]:
        """The organisations this grant may read (GET /connections)."""
        response = self._request(
            "GET /connections",
            None,
            lambda timeout: self.identity.get_connections(
                _preload_content=False, _request_timeout=timeout
            ),
        )
        if not isinstance(response.payload, list):
            raise XeroBadResponse("GET /connections did not return a list.", endpoint="/connections")
        return response.payload

    def get(self, sdk_method: str, tenant_id: str, label: str, **params: Any) -> Response:
        """Call one AccountingApi method by name, e.g. ``get("get_invoices", tid, "GET /Invoices")``."""
        method = getattr(self.accounting, sdk_method)
        params = {k: v for k, v in params.items() if v is not None}
        return self._request(
            label,
            tenant_id,
            lambda timeout: method(tenant_id, _preload_content=False, _request_timeout=timeout, **params),
        )

    def _request(self, label: str, tenant_id: str | None, call: Callable[[tuple[float, float]], Any]) -> Response:
        """Every HTTP call goes through here: classify, retry what is retriable, count."""
        refreshed_after_401 = False
        attempt = 0
        while True:
            attempt += 1
            if tenant_id:
                self.limiter.before_call(tenant_id)
            self.stats.calls += 1
            try:
                raw = call(self.settings.http_timeout)
                headers = {k.lower(): v for k, v in raw.headers.items()}
                body = raw.data
                self._note_headers(tenant_id, headers)
                try:
                    # Paging needs counts, ids and cursors only; the load re-reads the kept bytes
                    # with exact decimals, so floats here never reach a money column.
                    payload = loads_approximate(body)
                except ValueError:  # JSONDecodeError and UnicodeDecodeError
                    raise XeroBadResponse(
                        f"{label} returned a body that is not complete JSON ({len(body)} bytes).",
                        endpoint=label,
                    ) from None
                return Response(payload=payload, body=body, headers=headers, status=raw.status)
            except HTTPStatusException as error:
                headers = {k.lower(): v for k, v in (error.headers or {}).items()}
                self._note_headers(tenant_id, headers)
                failure = _classify(error, label, headers)
                if isinstance(failure, XeroAuthError) and "TokenExpired" in str(failure) and not refreshed_after_401:
                    # One 401 mid-run: refresh once and retry once, not a dead run.
                    refreshed_after_401 = True
                    self.refresh_tokens(force=True)
                    continue
            except XeroError as error:  # e.g. the token refresh the SDK ran before the call
                failure = error
            except urllib3.exceptions.HTTPError as error:
                failure = XeroUnavailable(f"{label}: cannot reach Xero ({_reason(error)}).", endpoint=label)
            except ApiException as error:  # SSL and request-preparation failures
                failure = XeroUnavailable(f"{label}: {error.reason}", endpoint=label)
            self._retry_or_raise(failure, attempt, label)

    def _retry_or_raise(self, failure: XeroError, attempt: int, label: str) -> None:
        """The one retry policy: raise what is fatal or out of attempts, else back off."""
        if failure.retries_exhausted:
            raise failure  # its own retries are spent already; do not multiply them
        if isinstance(failure, XeroRateLimited):
            self.stats.rate_limited += 1
        if not failure.retriable or attempt >= self.settings.max_attempts:
            if failure.retriable:
                failure.args = (f"{failure.args[0]} (gave up after {attempt} attempts)",)
                failure.retries_exhausted = True
            raise failure
        wait = self._backoff(attempt, failure)
        self.stats.retries += 1
        log.warning("%s Retrying in %.1f s (attempt %d of %d).", failure, wait, attempt + 1,
                    self.settings.max_attempts)
        self._sleep(wait)

    def _note_headers(self, tenant_id: str | None, headers: dict[str, str]) -> None:
        self.stats.note_quota(tenant_id, headers)
        if tenant_id:
            self.limiter.after_response(tenant_id, headers)

    def _backoff(self, attempt: int, failure: XeroError) -> float:
        if isinstance(failure, XeroRateLimited) and failure.retry_after is not None:
            return min(MAX_RETRY_WAIT_SECONDS, max(0.0, failure.retry_after)) + random.uniform(0, 0.25)
        return min(MAX_RETRY_WAIT_SECONDS, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


def _classify(error: HTTPStatusException, label: str, headers: dict[str, str] | None = None) -> XeroError:
    """Map a non-2xx answer to the taxonomy in :mod:`intoaec_xero.errors`."""
    headers = headers if headers is not None else {k.lower(): v for k, v in (error.headers or {}).items()}
    status = error.status or 0
    detail = _error_detail(error.body)
    if status == 429:
        problem = headers.get("x-rate-limit-problem")
        retry_after = _float(headers.get("retry-after"))
        message = f"{label}: Xero rate limit reached ({problem or 'unspecified'} limit)."
        if (problem or "").lower() == "day":
            return XeroDailyLimitReached(message, problem=problem, retry_after=retry_after, endpoint=label)
        return XeroRateLimited(message, problem=problem, retry_after=retry_after, endpoint=label)
    if status == 401:
        if "AuthorizationUnsuccessful" in detail:
            return XeroAccessDenied(f"{label}: Xero answered 401 AuthorizationUnsuccessful.",
                                    status=401, endpoint=label)
        return XeroAuthError(f"{label}: Xero answered 401 ({detail or 'Unauthorized'}).",
                             status=401, endpoint=label)
    if status == 403:
        return XeroAccessDenied(
            f"{label}: Xero answered 403 ({detail or 'Forbidden'}); the organisation may have been "
            "disconnected or the scope is missing.",
            status=403,
            endpoint=label,
        )
    if status >= 500 or status in (408, 409):
        return XeroUnavailable(f"{label}: Xero answered {status} ({detail or 'server error'}).",
                               status=status, endpoint=label)
    if status == 400 and "invalid_grant" in detail:
        return XeroAuthError(f"{label}: invalid_grant.", status=400, endpoint=label)
    return XeroError(f"{label}: Xero answered {status} ({detail or 'error'}).", status=status, endpoint=label)


def _error_detail(body: bytes | str | None) -> str:
    """The human part of a Xero error body, without echoing anything that could be a secret."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return str(body[:200] if isinstance(body, str) else body[:200].decode("utf-8", "replace"))
    if isinstance(data, dict):
        for key in ("Detail", "Message", "error_description", "error", "Title"):
            if data.get(key):
                value = str(data[key])
                if key == "error_description" and data.get("error"):
                    return f"{data['error']}: {value}"
                return value
    return ""


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "IncompleteRead" in text or "InvalidChunkLength" in text:
        return "the answer was cut off half-way"
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was reset"
    return text.splitlines()[0][:200]


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build_client(settings: XeroSettings, store: TokenStore) -> XeroClient:
    if not settings.client_id or not settings.client_secret:
        raise ConfigurationError(
            f"The Xero connection '{settings.connection_key}' has no client id or client secret."
        )
    return XeroClient(settings, store)
