"""docker-compose.yaml as Docker Compose would see it, without Docker.

There is no Docker engine on the development machines, so the tests resolve the file the way
Compose does: YAML with anchors and merge keys, then ``${VAR}``, ``${VAR:-default}``,
``${VAR:?error}`` and ``$$`` interpolated from an env file, and an ``environment:`` entry given
no value (``NAME:``) taken from that env file when it sets NAME, left out of the container when
it does not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
REQUIREMENTS = REPO / "requirements.txt"
HASHED_REQUIREMENTS = REPO / "requirements.hashes.txt"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}; $$ is a literal $.
_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class MissingVariable(ValueError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; Docker Compose refuses the file ("mapping key already defined")."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`, which may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"mapping key {key!r} already defined",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def raw() -> dict[str, Any]:
    return yaml.load(COMPOSE_FILE.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def interpolated_names(text: str) -> set[str]:
    """Variables Compose itself substitutes (not the ``$${...}`` a container's shell expands)."""
    names = set()
    for match in _VARIABLE.finditer(text):
        if match.group(0) != "$$":
            names.add(match.group(1) or match.group(4))
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them; surrounding single or double quotes are dropped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        present = name in env and (env[name] != "" or operator in ("-", "?"))
        if operator in (":-", "-"):
            return env[name] if present else argument
        if operator in (":?", "?") and not present:
            raise MissingVariable(f"{name}: {argument}")
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def resolved(env: dict[str, str]) -> dict[str, Any]:
    compose = interpolate(raw(), env)
    for service in (compose.get("services") or {}).values():
        if "environment" in service:
            service["environment"] = pass_through(service["environment"], env)
    return compose


def pass_through(environment: dict[str, Any] | list[str] | None, env: dict[str, str]) -> dict[str, str]:
    """``NAME:`` (or ``- NAME``) takes NAME's value from the env file, and is unset without it."""
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    values = {}
    for name, value in (environment or {}).items():
        if value is not None:
            values[name] = str(value)
        elif name in env:
            values[name] = env[name]
    return values


def passed_through(service: dict[str, Any]) -> set[str]:
    """Names a service's ``environment:`` (in the raw file) takes from the env file as they are."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {item for item in environment if "=" not in item}
    return {name for name, value in environment.items() if value is None}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (Compose accepts a mapping or a list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def pinned_airflow_version() -> str:
    version = pins(REQUIREMENTS).get("apache-airflow")
    assert version, "requirements.txt pins no apache-airflow version"
    return version


def pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a pip requirements file (hashed or not)."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def hashes(path: Path) -> dict[str, list[str]]:
    """name -> the sha256 hashes listed for it in a ``--generate-hashes`` lock."""
    found: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            current = match.group(1).lower().replace("_", "-")
            found[current] = []
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            found[current].append(digest)
    return found
