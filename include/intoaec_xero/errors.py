"""One taxonomy for everything that can go wrong, so callers decide by type, not by message.

Every message is a sentence a data engineer can act on; none carries a secret.
"""

from __future__ import annotations


class IntoAECXeroError(Exception):
    """Base class: anything raised on purpose by this package."""

    # Whether the same call may succeed if made again later (after a backoff).
    retriable = False


class ConfigurationError(IntoAECXeroError):
    """A connection, setting or URL is missing or wrong; retrying will not help."""

    retriable = False


class ConnectionMissing(ConfigurationError):
    """The Airflow connection a component was told to use does not exist (yet)."""

    retriable = False


class TargetDatabaseError(IntoAECXeroError):
    """The IntoAEC database cannot be reached or used."""

    retriable = True


class XeroError(IntoAECXeroError):
    """Xero (or the sandbox) answered with an error or not at all."""

    retriable = False
    # Set once the client has spent its attempts on this failure, so a caller that wraps
    # the call (an API call that needed a token refresh) does not retry it all over again.
    retries_exhausted = False

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class XeroUnavailable(XeroError):
    """Network failure, timeout or 5xx: worth retrying with backoff."""

    retriable = True


class XeroRateLimited(XeroError):
    """HTTP 429. ``problem`` is Xero's ``X-Rate-Limit-Problem`` (minute, day, concurrent)."""

    retriable = True

    def __init__(self, message: str, *, problem: str | None, retry_after: float | None, **kw):
        super().__init__(message, status=429, **kw)
        self.problem = problem
        self.retry_after = retry_after


class XeroDailyLimitReached(XeroRateLimited):
    """The tenant's day quota is spent: stop cleanly and resume on the next run."""

    retriable = False


class XeroAuthError(XeroError):
    """The grant no longer works (revoked, expired, invalid_grant) or the client id/secret is
    refused (invalid_client): a person has to act, so retrying will not help."""

    retriable = False


class XeroAccessDenied(XeroError):
    """Xero refused this endpoint for this tenant (scope, plan or tenant header)."""

    retriable = False


class StreamNotAvailable(XeroAccessDenied):
    """The tenant's Xero plan does not include this stream (Journals since 2026)."""

    retriable = False


class XeroBadResponse(XeroError):
    """The body was not the JSON Xero promises (truncated page, wrong type)."""

    retriable = True
