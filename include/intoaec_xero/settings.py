"""What the pipeline needs to know about a Xero connection, independent of where it is stored.

The Airflow sub-package builds these from the ``xero_default`` connection; the CLI and tests
build them directly. Secrets are kept out of ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from intoaec_xero.errors import ConfigurationError

XERO_API_BASE_URL = "https://api.xero.com/api.xro/2.0"
XERO_IDENTITY_BASE_URL = "https://identity.xero.com"
XERO_LOGIN_BASE_URL = "https://login.xero.com"
XERO_CONNECTIONS_BASE_URL = "https://api.xero.com"

# Apps created since March 2026 must ask for granular scopes; these are the read-only ones
# the sync needs (each stream declares its own: intoaec_xero.streams). offline_access is what
# yields a refresh token; the trial balance report is what the ledger is reconciled against.
# A grant made before a scope was added here lacks it until the organisation consents again: the
# streams that need it are skipped with "needs re-consent", the others still sync.
DEFAULT_SCOPES = (
    "offline_access",
    "accounting.invoices.read",
    "accounting.payments.read",
    "accounting.banktransactions.read",
    "accounting.manualjournals.read",
    "accounting.contacts.read",
    "accounting.settings.read",
    "accounting.journals.read",
    "accounting.reports.trialbalance.read",
    "accounting.reports.profitandloss.read",
)

DEFAULT_CONNECTION_KEY = "xero_default"

# The only hosts a connection may send a grant, a client secret or a sign-in to, unless it says
# it is the local sandbox: a form pointed elsewhere would hand them to whoever runs that host.
XERO_HOSTS = {
    "api_base_url": "api.xero.com",
    "identity_base_url": "identity.xero.com",
    "login_base_url": "login.xero.com",
    "connections_base_url": "api.xero.com",
}

# Every HTTP call to Xero gets both: a TCP connect that does not complete in 10 s will not,
# and Xero's slowest pages (1,000 invoices with lines) answer well inside 60 s.
DEFAULT_CONNECT_TIMEOUT = 10.0
# Tries of one call before its stream fails: 0.5 + 1 + 2 + 4 + 8 s of back-off between them.
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_READ_TIMEOUT = 60.0
# Xero's per-tenant minute limit.
DEFAULT_CALLS_PER_MINUTE = 60
GRANT_TYPES = ("authorization_code", "client_credentials")


@dataclass(frozen=True)
class ConnectionExtra:
    """One key a ``xero`` connection's extra may hold: its type, default, and how the connection form shows it.

    The hook keeps these keys out of HTTP headers, :func:`read_extras` checks them, the provider
    builds the form from those with ``in_form``, and the README's table documents every one.
    """

    name: str
    kind: type  # str, bool, int or float
    default: str | bool | int | float | None
    label: str
    description: str
    # Shown in the connection form; the others are set in the extra JSON (CLI, REST API, AIRFLOW_CONN_*).
    in_form: bool = True
    # text: what it must be, for the refusal of a value that is not text
    what: str = "text"
    choices: tuple[str, ...] = ()
    # numbers: the least value allowed (exclusive when above_minimum), and what the number means
    minimum: float = 0
    above_minimum: bool = False
    meaning: str = ""


XERO_EXTRAS: tuple[ConnectionExtra, ...] = (
    ConnectionExtra(
        "scopes", str, " ".join(DEFAULT_SCOPES), "Scopes",
        "Space-separated. Apps created since March 2026 must use granular scopes; offline_access is what lets "
        "the sync run without you."),
    ConnectionExtra(
        "tenant_filter", str, None, "Tenant filter",
        "Organisations to sync, by name or tenant id, comma-separated. Empty: every connected organisation."),
    ConnectionExtra(
        "api_base_url", str, XERO_API_BASE_URL, "API base URL",
        "Xero's Accounting API; the local sandbox's /api.xro/2.0 for demos and tests.", what="a URL"),
    ConnectionExtra(
        "identity_base_url", str, XERO_IDENTITY_BASE_URL, "Identity base URL",
        "Xero's identity service (token, revocation); the sandbox's address for demos and tests, which then "
        "also serves sign-in and /connections.", what="a URL"),
    ConnectionExtra(
        "sandbox", bool, False, "Local sandbox",
        "Tick only for the local Xero sandbox (demos and tests): a connection whose URLs are not Xero's is "
        "refused without it."),
    ConnectionExtra(
        "grant_type", str, "authorization_code", "Grant type",
        "authorization_code: a user signs in once (the Xero page or `intoaec-xero connect`). client_credentials: "
        "a Xero custom connection (one organisation).", choices=GRANT_TYPES),
    ConnectionExtra(
        "login_base_url", str, XERO_LOGIN_BASE_URL, "Sign-in base URL",
        "Xero's sign-in page; the identity base URL when that is not Xero's.", in_form=False, what="a URL"),
    ConnectionExtra(
        "connections_base_url", str, XERO_CONNECTIONS_BASE_URL, "Connections base URL",
        "Where /connections lists the organisations; the identity base URL when that is not Xero's.",
        in_form=False, what="a URL"),
    ConnectionExtra(
        "calls_per_minute", int, DEFAULT_CALLS_PER_MINUTE, "Calls per minute",
        "Client-side pacing per tenant; 0 turns it off (a sandbox without limits).",
        meaning="0 turns client-side pacing off"),
    ConnectionExtra(
        "max_attempts", int, DEFAULT_MAX_ATTEMPTS, "Attempts per call",
        "How many times one call to Xero is tried when the answer is a 5xx, a timeout or a 429 (with back-off) "
        "before its stream fails.", in_form=False, minimum=1, meaning="1 means no retry"),
    ConnectionExtra(
        "connect_timeout", float, DEFAULT_CONNECT_TIMEOUT, "Connect timeout",
        "Seconds to wait for a TCP connection to Xero, on every HTTP call.", above_minimum=True,
        meaning="seconds"),
    ConnectionExtra(
        "read_timeout", float, DEFAULT_READ_TIMEOUT, "Read timeout",
        "Seconds to wait for Xero's next bytes once connected, on every HTTP call.",
        above_minimum=True, meaning="seconds"),
    ConnectionExtra(
        "project_tracking_category", str, None, "Project tracking category",
        "The tracking category whose options are projects, by name or TrackingCategoryID. Empty: the first of "
        "Project, Projects, Job, Jobs the organisation has (a project_dimension_overrides row beats this).",
        in_form=False),
    ConnectionExtra(
        "project_reference_pattern", str, None, "Project reference pattern",
        "A regular expression searched in a document's Reference; its first group is the project of lines "
        "that have no option of the project category. Empty: none.", in_form=False, what="a regular expression"),
    ConnectionExtra(
        "ledger_source", str, "journals", "Ledger source",
        "journals: read Xero's Journals where Xero serves them to this app, and derive the ledger from the "
        "documents where it refuses them; documents: always derive it and never read Journals.",
        in_form=False, what="'journals' or 'documents'"),
)
LEDGER_SOURCES = ("journals", "documents")
XERO_EXTRA: dict[str, ConnectionExtra] = {extra.name: extra for extra in XERO_EXTRAS}


@dataclass(frozen=True)
class XeroSettings:
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    tenant_filter: tuple[str, ...] = ()
    api_base_url: str = XERO_API_BASE_URL
    identity_base_url: str = XERO_IDENTITY_BASE_URL
    login_base_url: str = XERO_LOGIN_BASE_URL
    connections_base_url: str = XERO_CONNECTIONS_BASE_URL
    grant_type: str = "authorization_code"
    connection_key: str = DEFAULT_CONNECTION_KEY
    # The read timeout: the longest wait for Xero's next bytes once connected (seconds).
    request_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Xero's per-tenant minute limit; 0 turns client-side pacing off (a sandbox without limits).
    calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    # True only for the local sandbox (or a stand-in in tests): allows URLs that are not Xero's.
    sandbox: bool = False
    # Which tracking category is the project (name or TrackingCategoryID; None: Project/Projects/Job/Jobs),
    # and a regex on a document's Reference whose first group is the project (see intoaec_xero.projects).
    project_tracking_category: str | None = None
    project_reference_pattern: str | None = None
    # "journals": Xero's Journals where the app may read them, derived from documents where not;
    # "documents": always derived (see intoaec_xero.ledger).
    ledger_source: str = "journals"

    def __post_init__(self) -> None:
        if not isinstance(self.sandbox, bool):
            raise ConfigurationError(f"The Xero connection '{self.connection_key}' has sandbox = {self.sandbox!r}: "
                                     "it must be true or false.")
        if not self.sandbox:
            for key, host in XERO_HOSTS.items():
                url = getattr(self, key)
                if not is_xero_url(url, host):
                    raise ConfigurationError(
                        f"The Xero connection '{self.connection_key}' points {key} at {_shown(url)}, which is not "
                        f"Xero's {host}: set \"sandbox\": true in its extra if that is the local sandbox, or "
                        f"remove {key} to use Xero's."
                    )
        # Checked here too, so settings built in code fail as clearly as a bad connection extra.
        for key, value in (("connect_timeout", self.connect_timeout), ("read_timeout", self.request_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ConfigurationError(f"The Xero connection '{self.connection_key}' has {key} = {value!r}: "
                                         "it must be a number of seconds greater than 0.")
        if isinstance(self.calls_per_minute, bool) or not isinstance(self.calls_per_minute, int) \
                or self.calls_per_minute < 0:
            raise ConfigurationError(f"The Xero connection '{self.connection_key}' has calls_per_minute = "
                                     f"{self.calls_per_minute!r}: it must be a whole number of 0 or more "
                                     "(0 turns client-side pacing off).")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(f"The Xero connection '{self.connection_key}' has max_attempts = "
                                     f"{self.max_attempts!r}: it must be a whole number of 1 or more.")
        if self.project_reference_pattern:
            try:
                re.compile(self.project_reference_pattern)
            except re.error as error:
                raise ConfigurationError(f"The Xero connection '{self.connection_key}' has project_reference_pattern "
                                         f"= {self.project_reference_pattern!r}: it is not a regular expression "
                                         f"({error}).") from None
        if self.ledger_source not in LEDGER_SOURCES:
            raise ConfigurationError(f"The Xero connection '{self.connection_key}' has ledger_source = "
                                     f"{self.ledger_source!r}: it must be 'journals' or 'documents'.")

    @property
    def http_timeout(self) -> tuple[float, float]:
        """(connect, read) seconds, the shape both xero-python and ``requests`` honour."""
        return (float(self.connect_timeout), float(self.request_timeout))

    @classmethod
    def for_single_host(cls, base_url: str, **kwargs) -> XeroSettings:
        """Settings for a server that serves Xero's identity and API on one host (the sandbox).

        Built in code, never from a connection form, so saying ``sandbox`` here is the caller's own word.
        """
        base = base_url.rstrip("/")
        return cls(
            api_base_url=f"{base}/api.xro/2.0",
            identity_base_url=base,
            login_base_url=base,
            connections_base_url=base,
            **{"sandbox": True, **kwargs},
        )

    @property
    def token_url(self) -> str:
        return f"{self.identity_base_url.rstrip('/')}/connect/token"

    @property
    def revocation_url(self) -> str:
        return f"{self.identity_base_url.rstrip('/')}/connect/revocation"

    @property
    def authorize_url(self) -> str:
        return f"{self.login_base_url.rstrip('/')}/identity/connect/authorize"

    @property
    def connections_url(self) -> str:
        return f"{self.connections_base_url.rstrip('/')}/connections"

    def wants_tenant(self, tenant_id: str, tenant_name: str) -> bool:
        """The tenant filter matches ids or names; empty means every connected organisation."""
        if not self.tenant_filter:
            return True
        wanted = {t.strip().lower() for t in self.tenant_filter if t.strip()}
        return tenant_id.lower() in wanted or tenant_name.strip().lower() in wanted


def is_xero_url(url: str, host: str) -> bool:
    """Whether ``url`` is https on Xero's ``host`` itself: no other port, no credentials in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme == "https" and (parts.hostname or "") == host and port in (None, 443)
            and parts.username is None and parts.password is None)


def _shown(url: str) -> str:
    """A URL fit for a message: scheme, host and port only (a URL may carry credentials)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unreadable URL"
    if not parts.scheme or not parts.hostname:
        return repr(url[:60]) if "@" not in url else "an unreadable URL"
    return f"{parts.scheme}://{parts.hostname}{port}"


def bool_setting(extra: Mapping[str, Any], key: str, *, connection: str) -> bool:
    """A true/false connection extra: JSON booleans and "true"/"false" text (Airflow's REST API turns
    booleans into text); absent or blank means false; anything else is refused by name."""
    value = extra.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("", "true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f"The Xero connection '{connection}' has {key} = {value!r} in its extra: "
                             "it must be true or false.")


def number_setting(extra: Mapping[str, Any], key: str, default: float, *, connection: str, whole: bool = False,
                   minimum: float = 0, above_minimum: bool = False, meaning: str = "") -> Any:
    """A numeric connection extra: JSON numbers and numeric text alike; absent or blank means the default.

    0 stays 0 (it may mean "off"); anything else that is not a number in range is refused by name.
    """
    value = extra.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            number = None
    in_range = number is not None and math.isfinite(number) and (
        number > minimum if above_minimum else number >= minimum)
    if number is None or not in_range or (whole and not number.is_integer()):
        kind = "a whole number" if whole else "a number"
        bound = f"greater than {minimum:g}" if above_minimum else f"of {minimum:g} or more"
        raise ConfigurationError(
            f"The Xero connection '{connection}' has {key} = {value!r} in its extra: it must be {kind} {bound}"
            + (f" ({meaning})." if meaning else ".")
        )
    return int(number) if whole else number


def read_extras(extra: Mapping[str, Any], *, connection: str) -> dict[str, Any]:
    """The declared extras that are set, each read as its declaration says; absent or blank ones are left out.

    Anything of the wrong type is refused with a sentence naming the connection and the key.
    """
    given: dict[str, Any] = {}
    for declared in XERO_EXTRAS:
        key, value = declared.name, extra.get(declared.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if declared.kind is bool:
            given[key] = bool_setting(extra, key, connection=connection)
        elif declared.kind in (int, float):
            # The default never applies here: absent and blank values were skipped above.
            given[key] = number_setting(extra, key, 0, connection=connection,
                                        whole=declared.kind is int, minimum=declared.minimum,
                                        above_minimum=declared.above_minimum, meaning=declared.meaning)
        elif not isinstance(value, str):
            raise ConfigurationError(f"The Xero connection '{connection}' has {key} = {value!r} in its extra: "
                                     f"it must be {declared.what}.")
        else:
            given[key] = value
    return given


def split_scopes(value: str | None) -> tuple[str, ...]:
    """Scopes arrive as space or comma separated text from UI forms."""
    if not value:
        return ()
    return tuple(part for part in value.replace(",", " ").split() if part)


def split_tenants(value: str | None) -> tuple[str, ...]:
    """Tenant filters are ids or organisation names (which contain spaces): comma/line separated."""
    if not value:
        return ()
    parts = value.replace(";", ",").replace("\n", ",").split(",")
    return tuple(part.strip() for part in parts if part.strip() and part.strip() != "*")
