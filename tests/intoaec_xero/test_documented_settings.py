"""The README's settings table says what the code declares: every variable and connection extra, with its default.

The table under "The ``xero_sync`` DAG" (``| setting | default | meaning |``) is the README's
configuration reference. A row names one or more settings in its first cell (``A`` / ``B``) and
gives their defaults in the same order in the second; an extra's row starts with
`` `xero_default` extra``.
"""

from __future__ import annotations

import re

from intoaec_xero.airflow.provider import conn_fields, get_provider_info
from intoaec_xero.environment import RuntimeSettings, env_vars
from intoaec_xero.settings import DEFAULT_SCOPES, XERO_EXTRA, XERO_EXTRAS, XeroSettings

from tests.conftest import REPO

HEADER = "| setting | default | meaning |"
VARIABLE = re.compile(r"^(?:INTOAEC|XERO)_[A-Z0-9_]+$")


def settings_table() -> list[tuple[str, str]]:
    """(first cell, default cell) of each row of the README's settings table."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines.count(HEADER) == 1, f"the README has one settings table headed {HEADER!r}"
    rows = []
    for line in lines[lines.index(HEADER) + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append((cells[0], cells[1]))
    return rows


def documented(kind: str) -> dict[str, str]:
    """Setting → its default cell part, for ``kind`` "variable" or "extra"."""
    found: dict[str, str] = {}
    for first, default in settings_table():
        is_extra = first.startswith("`xero_default` extra")
        if (kind == "extra") != is_extra:
            continue
        names = re.findall(r"`([^`]+)`", first.removeprefix("`xero_default`"))
        parts = default.split(" / ")
        assert len(parts) == len(names), f"row {first!r}: one default per setting, separated by ' / '"
        for name, part in zip(names, parts, strict=True):
            assert name not in found, f"{name} has two rows"
            found[name] = part
    return found


def shown(value: object, *, off: str | None = "false") -> str | None:
    """A default as the table writes it; None for "unset" (and ``off`` for a flag that is off)."""
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "true" if value else off
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def states_default(part: str, expected: str | None) -> bool:
    if expected is None:
        return part.startswith("unset")
    quoted = re.findall(r"`([^`]*)`", part)
    return bool(quoted) and quoted[0] == expected


# -- environment variables ------------------------------------------------------------------------

def test_every_variable_is_in_the_table_with_its_default():
    table = documented("variable")
    defaults = RuntimeSettings()
    for field_name, env in env_vars().items():
        assert env.name in table, f"{env.name} is not in the README's settings table"
        # A variable's flag that is off is simply unset.
        expected = env.default_text or shown(getattr(defaults, field_name), off=None)
        assert states_default(table[env.name], expected), \
            f"{env.name}: the README says {table[env.name]!r}, the declaration {expected or 'unset'!r}"


def test_the_table_names_no_variable_the_code_does_not_declare():
    declared = {env.name for env in env_vars().values()}
    names = set(documented("variable"))
    assert all(VARIABLE.match(name) for name in names)
    assert names <= declared, f"documented but not declared: {sorted(names - declared)}"


# -- connection extras ----------------------------------------------------------------------------

def test_every_extra_is_in_the_table_with_its_default_and_nothing_else():
    table = documented("extra")
    assert set(table) == set(XERO_EXTRA), (f"undocumented: {sorted(set(XERO_EXTRA) - set(table))}; "
                                           f"documented but not declared: {sorted(set(table) - set(XERO_EXTRA))}")
    for extra in XERO_EXTRAS:
        expected = shown(extra.default)
        assert states_default(table[extra.name], expected), \
            f"extra {extra.name}: the README says {table[extra.name]!r}, the declaration {expected or 'unset'!r}"


def test_the_settings_defaults_are_the_declared_ones():
    """XeroSettings built in code uses the same defaults as a connection that leaves an extra out."""
    built = XeroSettings(client_id="c", client_secret="s")
    attribute = {"read_timeout": "request_timeout"}
    for extra in XERO_EXTRAS:
        value = getattr(built, attribute.get(extra.name, extra.name))
        if extra.name == "scopes":
            assert value == DEFAULT_SCOPES and extra.default == " ".join(DEFAULT_SCOPES)
        elif extra.name == "tenant_filter":
            assert value == () and extra.default is None
        else:
            assert value == extra.default, extra.name


def test_the_form_shows_exactly_the_extras_declared_for_it():
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert list(fields) == [extra.name for extra in XERO_EXTRAS if extra.in_form] == list(conn_fields())
    types = {str: "string", bool: "boolean", int: "integer", float: "number"}
    for name, field in fields.items():
        extra = XERO_EXTRA[name]
        assert field["label"] == extra.label and field["description"] == extra.description
        assert field["schema"]["type"] == [types[extra.kind], "null"]
        assert field["schema"].get("default") == extra.default
        assert field["schema"].get("enum", []) == list(extra.choices)
