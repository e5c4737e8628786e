"""Every ``INTOAEC_*`` / ``XERO_*`` environment variable the sync reads, declared once and checked once.

:class:`RuntimeSettings` is the only place that reads them: each field names its variable, its
default, its type and what it means, and :meth:`RuntimeSettings.from_environ` turns the
environment into checked values, or into one :class:`ConfigurationError` sentence naming the
variable and the value it refuses. Entry points (the CLI's ``main``, DAG files, Airflow task
functions, the plugin) take :func:`current` and hand the values down.

Airflow's own variables (``AIRFLOW__*``, ``AIRFLOW_CONN_*``) stay Airflow's business and are not
declared here. Importing this module imports neither Airflow nor SQLAlchemy: DAG files read it
at parse time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from intoaec_xero.errors import ConfigurationError

# What INTOAEC_XERO_REDIRECT_URI defaults to for the CLI: the Airflow UI of `make airflow`.
DEFAULT_REDIRECT_URI = "http://localhost:8080/xero/callback"

_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class EnvVar:
    """How one field of :class:`RuntimeSettings` comes from the environment."""

    name: str
    meaning: str
    # text -> value; raises ValueError when the text is not one (the message then says ``requirement``)
    parse: Callable[[str], Any]
    requirement: str = ""
    # The default in the README's words when it is not the field's own value (e.g. "./var").
    default_text: str | None = None
    # Never repeated in a message (a key, a URL with a password).
    secret: bool = False


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    return Path(value)


def names(value: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped (INTOAEC_XERO_CONN_IDS, the Variable alike)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _flag(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(value)


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value.strip())
        if number < minimum:
            raise ValueError(value)
        return number

    return parse


def _number(minimum: float, *, above: bool = False, maximum: float | None = None) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value.strip())
        if not math.isfinite(number) or (number <= minimum if above else number < minimum) \
                or (maximum is not None and number > maximum):
            raise ValueError(value)
        return number

    return parse


def _schedule(value: str) -> str | None:
    return None if value.strip().lower() == "none" else value.strip()


def setting(name: str, default: Any, meaning: str, parse: Callable[[str], Any] = _text, *, requirement: str = "",
            default_text: str | None = None, secret: bool = False) -> Any:
    """A :class:`RuntimeSettings` field read from the environment variable ``name``."""
    return field(default=default, repr=not secret,
                 metadata={"env": EnvVar(name, meaning, parse, requirement, default_text, secret)})


@dataclass(frozen=True)
class RuntimeSettings:
    """The process's ``INTOAEC_*`` / ``XERO_*`` settings; a variable that is unset or blank keeps the default."""

    # -- where things live
    data_dir: Path | None = setting(
        "INTOAEC_DATA_DIR", None, "where raw pages (and data docs) are kept", _path, default_text="./var")
    raw_dir: Path | None = setting(
        "INTOAEC_RAW_DIR", None, "where raw pages are kept, if not under the data directory", _path,
        default_text="<INTOAEC_DATA_DIR>/raw")
    db_url: str | None = setting(
        "INTOAEC_DB_URL", None, "the IntoAEC database (any SQLAlchemy URL): the CLI's before the intoaec_db "
        "connection, Airflow's when that connection is missing", secret=True)
    # -- Xero connections and tokens
    xero_conn_ids: tuple[str, ...] = setting(
        "INTOAEC_XERO_CONN_IDS", (), "the Xero connections xero_sync syncs, comma separated; else the Variable "
        "intoaec_xero_conn_ids, else xero_default", names)
    xero_redirect_uri: str | None = setting(
        "INTOAEC_XERO_REDIRECT_URI", None, "the redirect URI registered on the Xero app; else the page uses "
        "[api] base_url + /xero/callback and the CLI " + DEFAULT_REDIRECT_URI)
    fernet_key: str | None = setting(
        "INTOAEC_FERNET_KEY", None, "the Fernet key(s) the token store encrypts with, over Airflow's own",
        secret=True)
    allow_plaintext_tokens: bool = setting(
        "INTOAEC_ALLOW_PLAINTEXT_TOKENS", False, "1 lets a process without a Fernet key store tokens "
        "unencrypted (throwaway demos only)", _flag, requirement="1, true or yes to allow, or 0, false or no")
    # -- the sync
    sync_schedule: str | None = setting(
        "XERO_SYNC_SCHEDULE", "@hourly", "the xero_sync DAG's schedule (cron or preset), read when the DAG is "
        "parsed; none: no schedule, runs only when triggered (Sync now, the API)", _schedule)
    full_reconcile_days: float = setting(
        "INTOAEC_FULL_RECONCILE_DAYS", 7.0, "days between full re-reads of each paged stream", _number(0),
        requirement="a number of days, 0 or more")
    stale_after_minutes: float = setting(
        "INTOAEC_STALE_AFTER_MINUTES", 120.0, "when a tenant's data counts as stale; 2 × the hourly schedule",
        _number(0), requirement="a number of minutes, 0 or more")
    retry_delay_seconds: int = setting(
        "INTOAEC_RETRY_DELAY_SECONDS", 120, "wait before Airflow retries a task of xero_sync", _whole(0),
        requirement="a whole number of seconds, 0 or more")
    task_timeout_minutes: int = setting(
        "INTOAEC_TASK_TIMEOUT_MINUTES", 60, "execution_timeout of every xero_sync task but extract", _whole(0),
        requirement="a whole number of minutes, 0 or more")
    extract_timeout_minutes: int = setting(
        "INTOAEC_EXTRACT_TIMEOUT_MINUTES", 360, "execution_timeout of an extract (and of each xero_backfill try)",
        _whole(0), requirement="a whole number of minutes, 0 or more")
    sync_batch_size: int = setting(
        "INTOAEC_SYNC_BATCH_SIZE", 25, "how many small organisations of firms' grants one xero_sync task syncs "
        "(one after another; a task costs seconds of Airflow overhead); 1: one task per organisation", _whole(1),
        requirement="a whole number, 1 or more")
    sync_batch_max_calls: int = setting(
        "INTOAEC_SYNC_BATCH_MAX_CALLS", 60, "a firm's organisation whose previous sync made more Xero calls than "
        "this gets a task of its own (a new one is batched)", _whole(0),
        requirement="a whole number, 0 or more")
    # -- alerts
    alert_email: str | None = setting(
        "INTOAEC_ALERT_EMAIL", None, "where e-mail alerts go, through the SMTP provider")
    alert_smtp_conn: str = setting(
        "INTOAEC_ALERT_SMTP_CONN", "smtp_default", "the SMTP connection e-mail alerts are sent through")
    alert_slack_conn: str | None = setting(
        "INTOAEC_ALERT_SLACK_CONN", None, "a Slack webhook connection for alerts")
    # -- the backfill
    backfill_share: float = setting(
        "INTOAEC_BACKFILL_SHARE", 0.6, "the backfill's share of each tenant's daily Xero quota",
        _number(0, above=True, maximum=1), requirement="a number greater than 0 and at most 1")
    xero_day_limit: int = setting(
        "INTOAEC_XERO_DAY_LIMIT", 5000, "Xero's calls a day per tenant (1000 on the Starter tier)", _whole(1),
        requirement="a whole number of 1 or more")
    backfill_poke_minutes: int = setting(
        "INTOAEC_BACKFILL_POKE_MINUTES", 60, "minutes between passes of xero_backfill's journal walk", _whole(0),
        requirement="a whole number of minutes, 0 or more")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> RuntimeSettings:
        """Every declared variable read and checked; the first one that is wrong is named in the error."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            env: EnvVar = item.metadata["env"]
            raw = environ.get(env.name)
            if raw is None or not raw.strip():
                continue
            try:
                values[item.name] = env.parse(raw)
            except ValueError:
                shown = "a value" if env.secret else repr(raw)
                raise ConfigurationError(
                    f"The environment variable {env.name} is {shown}: it must be {env.requirement} "
                    f"({env.meaning}).") from None
        return cls(**values)

    # -- derived values: computed when asked, since ./var is relative to the working directory then
    def data_path(self) -> Path:
        return Path(self.data_dir or Path.cwd() / "var").resolve()

    def raw_path(self) -> Path:
        return Path(self.raw_dir or self.data_path() / "raw")

    @property
    def stale_after(self) -> timedelta:
        return timedelta(minutes=self.stale_after_minutes)

    @property
    def full_reconcile_interval(self) -> timedelta:
        return timedelta(days=self.full_reconcile_days)


def env_vars() -> dict[str, EnvVar]:
    """Field name → its declaration, in declaration order."""
    return {item.name: item.metadata["env"] for item in fields(RuntimeSettings)}


ENV_NAMES: tuple[str, ...] = tuple(env.name for env in env_vars().values())


def current(environ: Mapping[str, str] | None = None) -> RuntimeSettings:
    """This process's settings, built once per distinct value of the declared variables.

    Keyed on the variables rather than built once for good: the demo and the tests change the
    environment within one process, and a stale copy would quietly use the old values.
    """
    source = os.environ if environ is None else environ
    return _built(tuple(source.get(name) for name in ENV_NAMES))


@lru_cache(maxsize=8)
def _built(snapshot: tuple[str | None, ...]) -> RuntimeSettings:
    return RuntimeSettings.from_environ({name: value for name, value in zip(ENV_NAMES, snapshot, strict=True)
                                         if value is not None})
