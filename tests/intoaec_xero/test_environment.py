"""The INTOAEC_* / XERO_* variables: declared once, checked once, read nowhere else."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from intoaec_xero import environment
from intoaec_xero.backfill import quota
from intoaec_xero.environment import ENV_NAMES, RuntimeSettings, current, env_vars
from intoaec_xero.errors import ConfigurationError

from tests.conftest import REPO


def test_the_defaults_are_the_ones_the_code_always_had():
    settings = RuntimeSettings.from_environ({})
    assert settings == RuntimeSettings()
    assert (settings.sync_schedule, settings.retry_delay_seconds, settings.task_timeout_minutes,
            settings.extract_timeout_minutes, settings.backfill_poke_minutes) == ("@hourly", 120, 60, 360, 60)
    assert settings.stale_after == timedelta(hours=2)
    assert settings.full_reconcile_interval == timedelta(days=7)
    assert (settings.backfill_share, settings.xero_day_limit) == (quota.DEFAULT_SHARE, quota.XERO_DAY_LIMIT)
    assert settings.alert_smtp_conn == "smtp_default" and settings.alert_email is None
    assert settings.xero_conn_ids == () and not settings.allow_plaintext_tokens
    assert settings.db_url is None and settings.fernet_key is None and settings.xero_redirect_uri is None


def test_paths_default_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = RuntimeSettings()
    assert settings.data_path() == (tmp_path / "var").resolve()
    assert settings.raw_path() == (tmp_path / "var").resolve() / "raw"
    given = RuntimeSettings.from_environ({"INTOAEC_DATA_DIR": "data", "INTOAEC_RAW_DIR": "/srv/raw"})
    assert given.data_path() == (tmp_path / "data").resolve() and given.raw_path() == Path("/srv/raw")


@pytest.mark.parametrize("written", ["none", "None", " NONE "])
def test_a_sync_schedule_of_none_means_only_when_triggered(written):
    assert RuntimeSettings.from_environ({"XERO_SYNC_SCHEDULE": written}).sync_schedule is None


def test_values_are_read_as_their_declared_types():
    settings = RuntimeSettings.from_environ({
        "XERO_SYNC_SCHEDULE": "0 * * * *", "INTOAEC_RETRY_DELAY_SECONDS": " 5 ", "INTOAEC_FULL_RECONCILE_DAYS": "0",
        "INTOAEC_STALE_AFTER_MINUTES": "90.5", "INTOAEC_XERO_CONN_IDS": "xero_a, xero_b,,",
        "INTOAEC_ALLOW_PLAINTEXT_TOKENS": "Yes", "INTOAEC_BACKFILL_SHARE": "1", "INTOAEC_XERO_DAY_LIMIT": "1000",
    })
    assert settings.sync_schedule == "0 * * * *" and settings.retry_delay_seconds == 5
    assert settings.full_reconcile_interval == timedelta(0)
    assert settings.stale_after == timedelta(minutes=90.5)
    assert settings.xero_conn_ids == ("xero_a", "xero_b")
    assert settings.allow_plaintext_tokens is True
    assert (settings.backfill_share, settings.xero_day_limit) == (1.0, 1000)


@pytest.mark.parametrize("flag", ["", " ", "0", "no", "false", "FALSE"])
def test_blank_or_a_no_keeps_plaintext_tokens_refused(flag):
    assert RuntimeSettings.from_environ({"INTOAEC_ALLOW_PLAINTEXT_TOKENS": flag}).allow_plaintext_tokens is False


def test_a_blank_variable_keeps_the_default():
    blank = {name: "  " for name in ENV_NAMES}
    assert RuntimeSettings.from_environ(blank) == RuntimeSettings()


@pytest.mark.parametrize(("name", "value", "requirement"), [
    ("INTOAEC_RETRY_DELAY_SECONDS", "soon", "a whole number of seconds, 0 or more"),
    ("INTOAEC_TASK_TIMEOUT_MINUTES", "1.5", "a whole number of minutes, 0 or more"),
    ("INTOAEC_EXTRACT_TIMEOUT_MINUTES", "-1", "a whole number of minutes, 0 or more"),
    ("INTOAEC_BACKFILL_POKE_MINUTES", "an hour", "a whole number of minutes, 0 or more"),
    ("INTOAEC_FULL_RECONCILE_DAYS", "nan", "a number of days, 0 or more"),
    ("INTOAEC_STALE_AFTER_MINUTES", "-5", "a number of minutes, 0 or more"),
    ("INTOAEC_BACKFILL_SHARE", "0", "a number greater than 0 and at most 1"),
    ("INTOAEC_BACKFILL_SHARE", "1.5", "a number greater than 0 and at most 1"),
    ("INTOAEC_XERO_DAY_LIMIT", "0", "a whole number of 1 or more"),
    ("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "maybe", "1, true or yes to allow, or 0, false or no"),
])
def test_a_bad_value_is_one_sentence_naming_the_variable_and_the_value(name, value, requirement):
    with pytest.raises(ConfigurationError) as caught:
        RuntimeSettings.from_environ({name: value})
    message = str(caught.value)
    meaning = env_vars()[next(f for f, env in env_vars().items() if env.name == name)].meaning
    assert message == f"The environment variable {name} is {value!r}: it must be {requirement} ({meaning})."
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "\n" not in message


def test_secrets_stay_out_of_the_repr():
    settings = RuntimeSettings.from_environ({"INTOAEC_FERNET_KEY": "k3y-value",
                                             "INTOAEC_DB_URL": "postgresql://u:pa55@db/intoaec"})
    assert "k3y-value" not in repr(settings) and "pa55" not in repr(settings)
    assert settings.fernet_key == "k3y-value"


def test_current_is_built_once_per_environment(monkeypatch):
    monkeypatch.setenv("INTOAEC_RETRY_DELAY_SECONDS", "7")
    first = current()
    assert current() is first and first.retry_delay_seconds == 7
    monkeypatch.setenv("INTOAEC_RETRY_DELAY_SECONDS", "8")
    assert current().retry_delay_seconds == 8
    monkeypatch.setenv("INTOAEC_RETRY_DELAY_SECONDS", "eight")
    with pytest.raises(ConfigurationError, match="INTOAEC_RETRY_DELAY_SECONDS is 'eight'"):
        current()
    assert current({}) == RuntimeSettings()


def test_every_field_declares_its_variable_and_meaning():
    declared = env_vars()
    assert len(set(ENV_NAMES)) == len(ENV_NAMES) == len(declared)
    for field_name, env in declared.items():
        assert env.name.startswith(("INTOAEC_", "XERO_")), field_name
        assert env.meaning and "\n" not in env.meaning, field_name


# -- nothing else reads them ---------------------------------------------------------------------

READERS = {"get", "getenv", "pop", "setdefault"}
SCANNED = ("include", "dags", "plugins")
SETTINGS_MODULE = REPO / "include" / "intoaec_xero" / "environment.py"


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def env_reads(source: str) -> list[str]:
    """The INTOAEC_* / XERO_* variables a module reads from the environment, by literal or module constant."""
    tree = ast.parse(source)
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func = node.func
            if (func.attr in READERS and _is_environ(func.value)) or (
                    func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"):
                key = name_of(node.args[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getenv" and node.args:
            key = name_of(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            key = name_of(node.slice)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn) \
                and _is_environ(node.comparators[0]):
            key = name_of(node.left)
        if key and key.startswith(("INTOAEC_", "XERO_")):
            found.append(key)
    return found


def test_the_scan_finds_every_way_of_reading_a_variable():
    source = '''
import os
from os import environ, getenv
FLAG = "INTOAEC_FLAG"
a = os.environ.get("INTOAEC_A")
b = os.environ["XERO_B"]
c = os.getenv("INTOAEC_C", "1")
d = environ.get(FLAG)
e = "INTOAEC_E" in os.environ
f = getenv("XERO_F")
g = os.environ.get("AIRFLOW__CORE__FERNET_KEY")
os.environ["INTOAEC_WRITTEN"] = "1"
'''
    assert env_reads(source) == ["INTOAEC_A", "XERO_B", "INTOAEC_C", "INTOAEC_FLAG", "INTOAEC_E", "XERO_F"]


def test_only_the_settings_module_reads_intoaec_and_xero_variables():
    offenders = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == SETTINGS_MODULE:
                continue
            for name in env_reads(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(REPO)} reads {name}")
    assert not offenders, ("read these through intoaec_xero.environment.RuntimeSettings (declare the variable "
                           "there): " + "; ".join(offenders))


def test_the_settings_module_is_importable_without_airflow_or_sqlalchemy():
    tree = ast.parse(SETTINGS_MODULE.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("airflow", "sqlalchemy")}
    assert environment.__name__ == "intoaec_xero.environment"
