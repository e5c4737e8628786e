"""What the pipeline needs to know about a Xero connection, independent of where it is stored.

The Airflow sub-package builds these from the ``xero_default`` connection; the CLI and tests
build them directly. Secrets are kept out of ``repr`` so they never reach a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

XERO_API_BASE_URL = "https://api.xero.com/api.xro/2.0"
XERO_IDENTITY_BASE_URL = "https://identity.xero.com"
XERO_LOGIN_BASE_URL = "https://login.xero.com"
XERO_CONNECTIONS_BASE_URL = "https://api.xero.com"

# Apps created since March 2026 must ask for granular scopes; these are the read-only ones
# the sync needs. offline_access is what yields a refresh token; the trial balance report is
# what the ledger is reconciled against.
DEFAULT_SCOPES = (
    "offline_access",
    "accounting.invoices.read",
    "accounting.payments.read",
    "accounting.contacts.read",
    "accounting.settings.read",
    "accounting.journals.read",
    "accounting.reports.trialbalance.read",
)

DEFAULT_CONNECTION_KEY = "xero_default"


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
    request_timeout: float = 60.0
    max_attempts: int = 6
    # Xero's per-tenant minute limit; 0 turns client-side pacing off (a sandbox without limits).
    calls_per_minute: int = 60

    @classmethod
    def for_single_host(cls, base_url: str, **kwargs) -> XeroSettings:
        """Settings for a server that serves Xero's identity and API on one host (the sandbox)."""
        base = base_url.rstrip("/")
        return cls(
            api_base_url=f"{base}/api.xro/2.0",
            identity_base_url=base,
            login_base_url=base,
            connections_base_url=base,
            **kwargs,
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
