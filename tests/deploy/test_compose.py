"""docker-compose.yaml, Dockerfile and .env.example, checked statically (no Docker engine here).

The file is resolved as Compose resolves it (anchors, merge keys, interpolation from
.env.example with its empty secrets filled in, bare ``NAME:`` entries passed through), then held
to what the deployment promises: the official 3.x services on CeleryExecutor, the image at the
pinned Airflow built from hash-checked pins, the project's dags/ and plugins/ everywhere, one
raw-page volume shared by every worker, two separate databases each with a role of its own (not
the superuser), an init that creates the roles, migrates both databases and creates the pool,
health checks everywhere, secrets that only ever come from the git-ignored .env and reach only
the services that need them, and Flower on the host's loopback behind a login.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO
from tests.deploy.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    HASHED_REQUIREMENTS,
    REQUIREMENTS,
    MissingVariable,
    environment,
    hashes,
    interpolate,
    interpolated_names,
    passed_through,
    pinned_airflow_version,
    pins,
    raw,
    read_env_file,
    resolved,
)

AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis"}
COMMANDS = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
            "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
            "airflow-triggerer": "triggerer"}
SECRETS = ("FERNET_KEY", "API_SECRET_KEY", "JWT_SECRET", "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD",
           "_AIRFLOW_WWW_USER_PASSWORD", "FLOWER_BASIC_AUTH")
INTOAEC_DB_PASSWORD = "s3cret-intoaec"
# Which services may hold each secret: every other service must not see it anywhere in its
# definition (environment, command, health check).
HOLDERS = {
    "POSTGRES_PASSWORD": {"postgres", "airflow-init"},
    "_AIRFLOW_WWW_USER_PASSWORD": {"airflow-init"},
    "FLOWER_BASIC_AUTH": {"flower"},
    "AIRFLOW_DB_PASSWORD": AIRFLOW_SERVICES,
    "FERNET_KEY": AIRFLOW_SERVICES,
    "API_SECRET_KEY": AIRFLOW_SERVICES,
    "JWT_SECRET": AIRFLOW_SERVICES,
    "INTOAEC_DB_URL": AIRFLOW_SERVICES,
}
REGENERATE_HASHES = ("uv pip compile --generate-hashes --python-version 3.11 requirements.in -c requirements.txt "
                     "-o requirements.hashes.txt")


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def filled_env(example_env) -> dict[str, str]:
    """.env.example as an operator fills it in: every empty secret given a value."""
    return {**example_env, **{name: f"test-{name.lower()}" for name in SECRETS},
            "INTOAEC_DB_URL": f"postgresql+psycopg2://intoaec:{INTOAEC_DB_PASSWORD}@postgres:5432/intoaec"}


@pytest.fixture(scope="module")
def compose(filled_env) -> dict:
    return resolved(filled_env)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def airflow_services(services):
    """The services that run Airflow with the project's settings (Flower runs the image with the broker alone)."""
    return {name: s for name, s in services.items() if name in AIRFLOW_SERVICES}


# ----------------------------------------------------------------------------- shape

def test_the_official_services_are_all_there(services):
    assert REQUIRED_SERVICES <= set(services)
    for name, command in COMMANDS.items():
        assert services[name]["command"] == command, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_every_airflow_service_runs_the_celery_executor_on_the_bundled_broker(services):
    for name, service in airflow_services(services).items():
        env = environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379/" in env[
            "AIRFLOW__CELERY__BROKER_URL"], name
        assert make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).host == "postgres", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        # Workers reach the Execution API through the api-server service, by its service name.
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        # A busy API server must not make a task fail to start (Airflow's default wait is 5 s).
        assert float(env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"]) >= 30, name


def test_the_image_is_built_from_the_pinned_airflow(compose, services, example_env):
    version = pinned_airflow_version()
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(version)}$", dockerfile, re.M), "Dockerfile's AIRFLOW_VERSION"
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert base.startswith("apache/airflow:") and "${AIRFLOW_VERSION}" in base, base
    # pip would replace the base image's Airflow with the lock's without a word: the build
    # checks both against AIRFLOW_VERSION.
    assert "m.version('apache-airflow')" in dockerfile and "'${AIRFLOW_VERSION}'" in dockerfile
    assert pins(HASHED_REQUIREMENTS).get("apache-airflow") == version
    assert "requirements.hashes.txt" in dockerfile and "/opt/intoaec" in dockerfile
    default_image = re.search(r"\$\{AIRFLOW_IMAGE_NAME:-([^}]+)\}", COMPOSE_FILE.read_text()).group(1)
    assert default_image.endswith(f":{version}"), default_image
    assert example_env["AIRFLOW_IMAGE_NAME"].endswith(f":{version}")
    for name, service in {**airflow_services(services), "flower": services["flower"]}.items():
        assert service["build"] == "." and service["image"] == example_env["AIRFLOW_IMAGE_NAME"], name


def test_the_project_dags_plugins_and_shared_raw_pages_are_mounted_everywhere(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in airflow_services(services).items():
        mounts = dict(volume.rsplit(":", 1) if volume.count(":") == 1 else volume.split(":")[:2]
                      for volume in service["volumes"])
        assert mounts.get("./dags") == "/opt/airflow/dags", name
        assert mounts.get("./plugins") == "/opt/airflow/plugins", name
        data_dir = environment(service)["INTOAEC_DATA_DIR"]
        # An extract and its load may run on different workers: the raw pages must be shared.
        shared = [src for src, dst in mounts.items() if dst == data_dir]
        assert shared and shared[0] in declared, f"{name}: {data_dir} is not on a shared named volume"
        for source in mounts:
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    assert (REPO / "dags" / "xero_sync.py").is_file() and (REPO / "plugins").is_dir()
    assert "postgres-db-volume" in {v.split(":")[0] for v in services["postgres"]["volumes"]}


def test_airflow_metadata_and_intoaec_data_are_separate_databases(services, filled_env):
    env = environment(services["airflow-scheduler"])
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    intoaec_conn = json.loads(env["AIRFLOW_CONN_INTOAEC_DB"])
    intoaec = make_url(intoaec_conn["extra"]["sqlalchemy_url"])
    assert intoaec_conn["conn_type"] == "generic"
    assert str(intoaec.render_as_string(hide_password=False)) == filled_env["INTOAEC_DB_URL"]
    assert metadata.database == "airflow"
    assert intoaec.database != metadata.database and intoaec.username != metadata.username


def test_init_migrates_both_databases_and_creates_the_pool(services):
    init = services["airflow-init"]
    script = init["command"][-1]
    assert init["entrypoint"] == "/bin/bash" and "set -euo pipefail" in script
    # The roles come first: Airflow migrates its database as its own role.
    assert script.index("ROLE") < script.index("airflow db migrate")
    assert 'intoaec-xero --db-url "${INTOAEC_DB_URL}" db upgrade' in script
    assert re.search(r'airflow pools set xero_api "\$\{XERO_API_POOL_SLOTS:-\d+\}"', script)
    assert init["user"] == "0:0" and "restart" not in init  # one-shot, runs to completion
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name == "airflow-init":
            continue  # one-shot; the others wait for service_completed_successfully instead
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "always", name


def test_dependencies_wait_for_health(services):
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if dependency != "airflow-init":
                assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
                assert services[dependency].get("healthcheck"), dependency
    assert "airflow-apiserver" in services["airflow-worker"]["depends_on"]  # it needs the Execution API


def test_workers_scale_and_shut_down_warm(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale airflow-worker=N` works
    assert environment(worker)["DUMB_INIT_SETSID"] == "0"
    assert '"celery@${HOSTNAME}"' in worker["healthcheck"]["test"][1]


def test_secrets_come_only_from_the_env_file(compose, services):
    text = COMPOSE_FILE.read_text()
    for name in SECRETS:
        assert re.search(rf"\$\{{{name}:\?[^}}]+\}}", text), f"{name} must be required (${{{name}:?...}})"
    scheduler = environment(services["airflow-scheduler"])
    assert scheduler["AIRFLOW__CORE__FERNET_KEY"] == "test-fernet_key"
    assert scheduler["AIRFLOW__API_AUTH__JWT_SECRET"] == "test-jwt_secret"


def test_compose_refuses_to_start_without_the_secrets(example_env):
    """As shipped, .env.example leaves every secret empty, so a copy that is not filled in fails."""
    with pytest.raises(MissingVariable):
        interpolate(raw(), example_env)
    for name in SECRETS:
        assert example_env[name] == "", f".env.example must not carry a value for {name}"


def test_env_example_lists_every_interpolated_variable(example_env):
    used = interpolated_names(COMPOSE_FILE.read_text())
    assert used, "the compose file interpolates nothing?"
    assert used <= set(example_env), f"missing from .env.example: {sorted(used - set(example_env))}"
    # What the containers' own shells read from .env is listed too.
    shell = {m.group(1) for m in re.finditer(r"\$\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text())}
    assert shell - {"HOSTNAME"} <= set(example_env), sorted(shell - {"HOSTNAME"} - set(example_env))


def test_env_is_ignored_and_the_example_is_not():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0

    assert ignored(".env")
    assert not ignored(".env.example")
    dockerignore = (REPO / ".dockerignore").read_text().split()
    assert dockerignore[0] == "*" or ".env" in dockerignore, "the build context may carry .env"


def test_the_api_server_publishes_the_ui_and_the_redirect_uri_matches(services, example_env):
    assert services["airflow-apiserver"]["ports"] == [f"{example_env['AIRFLOW_API_PORT']}:8080"]
    redirect = example_env["INTOAEC_XERO_REDIRECT_URI"]
    assert redirect.endswith("/xero/callback") and f":{example_env['AIRFLOW_API_PORT']}/" in redirect


def test_the_pool_fits_under_the_app_brake_and_inside_the_workers(services, example_env):
    """Each running extract makes at most one more call once Xero reports the app's minute nearly
    spent, so a pool no larger than that reserve keeps the app under 10,000 calls a minute; and
    loads need worker slots the extracts do not hold."""
    from intoaec_xero.limits import LimitPolicy

    slots = int(example_env["XERO_API_POOL_SLOTS"])
    assert 0 < slots <= LimitPolicy().app_minute_reserve
    assert int(example_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) > slots
    assert int(example_env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"]) > slots
    assert f"${{XERO_API_POOL_SLOTS:-{slots}}}" in services["airflow-init"]["command"][-1]


# ----------------------------------------------------------------------------- exposure and secrets

def secret_values(filled_env) -> dict[str, str]:
    values = {name: filled_env[name] for name in SECRETS}
    values["INTOAEC_DB_URL"] = INTOAEC_DB_PASSWORD
    return values


def test_each_secret_reaches_only_the_services_that_need_it(services, filled_env):
    """A secret's value anywhere in a service's definition means the container holds it."""
    assert set(HOLDERS) == set(SECRETS) | {"INTOAEC_DB_URL"}
    for secret, value in secret_values(filled_env).items():
        holders = {name for name, service in services.items() if value in json.dumps(service)}
        assert holders == HOLDERS[secret], f"{secret} is held by {sorted(holders)}, not {sorted(HOLDERS[secret])}"


def test_workers_hold_neither_the_ui_admin_nor_the_postgres_superuser_password(services, filled_env):
    worker = services["airflow-worker"]
    definition = json.dumps(worker)
    for secret in ("_AIRFLOW_WWW_USER_PASSWORD", "POSTGRES_PASSWORD"):
        assert filled_env[secret] not in definition, f"the worker holds {secret}"
    # Nor through a volume: the UI password file lives on airflow-config.
    assert not any(volume.startswith("airflow-config:") for volume in worker["volumes"])


def test_no_service_receives_the_whole_env_file():
    for name, service in raw()["services"].items():
        assert "env_file" not in service, f"{name} gets every line of .env: name what it needs under environment:"
    assert "env_file" not in raw()["x-airflow-common"]


def test_the_ui_password_file_is_mounted_only_where_it_is_written_and_read(services):
    mounting = {name for name, service in services.items()
                if any(str(volume).startswith("airflow-config:") for volume in service.get("volumes") or [])}
    assert mounting == {"airflow-init", "airflow-apiserver"}
    for name in mounting:
        assert (environment(services[name])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
                .startswith("/opt/airflow/config/")), name


def test_airflow_uses_its_own_role_not_the_superuser(services, filled_env):
    superuser = environment(services["postgres"])["POSTGRES_USER"]
    assert superuser == filled_env["POSTGRES_USER"] and "POSTGRES_DB" not in environment(services["postgres"])
    for name, service in airflow_services(services).items():
        env = environment(service)
        metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        backend = make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
        assert metadata.username == backend.username == filled_env["AIRFLOW_DB_USER"] != superuser, name
        assert metadata.password == backend.password == filled_env["AIRFLOW_DB_PASSWORD"], name
        assert filled_env["POSTGRES_PASSWORD"] not in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
    # Only airflow-init connects as the superuser, to create the roles.
    init = environment(services["airflow-init"])
    assert init["POSTGRES_USER"] == superuser and init["POSTGRES_PASSWORD"] == filled_env["POSTGRES_PASSWORD"]
    assert "NOSUPERUSER" in services["airflow-init"]["command"][-1]


def test_only_the_api_server_and_a_loopback_flower_are_published(services):
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"airflow-apiserver", "flower"}
    for port in published["flower"]:
        assert str(port).startswith("127.0.0.1:"), f"Flower is published beyond the host's loopback: {port}"


def test_flower_requires_a_login_set_in_the_env_file(services, filled_env, example_env):
    flower = services["flower"]
    assert flower["profiles"] == ["flower"] and flower["command"] == "celery flower"
    assert environment(flower)["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == filled_env["FLOWER_BASIC_AUTH"]
    assert re.search(r"AIRFLOW__CELERY__FLOWER_BASIC_AUTH: \$\{FLOWER_BASIC_AUTH:\?[^}]+\}", COMPOSE_FILE.read_text())
    with pytest.raises(MissingVariable, match="FLOWER_BASIC_AUTH"):
        resolved({**filled_env, "FLOWER_BASIC_AUTH": ""})
    assert example_env["FLOWER_BASIC_AUTH"] == ""
    # The health check must pass behind the login: /healthcheck is the page Flower leaves open.
    assert "localhost:5555/healthcheck" in flower["healthcheck"]["test"][-1]
    # The broker and the login, nothing else: no database, key or signing secret, no data.
    assert set(environment(flower)) == {"AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL",
                                        "AIRFLOW__CELERY__FLOWER_BASIC_AUTH", "TZ"}
    assert flower["volumes"] == [] and set(flower["depends_on"]) == {"redis"}


def test_the_connection_test_button_is_enabled(services):
    for name, service in airflow_services(services).items():
        assert environment(service)["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled", name


def test_every_setting_the_code_reads_reaches_the_airflow_containers():
    """Without a blanket env_file, a knob reaches the containers only if compose names it.

    The code reads INTOAEC_* / XERO_* variables only through intoaec_xero.environment (a test
    there scans the source), so its declaration is the list of what the code reads.
    """
    from intoaec_xero.environment import ENV_NAMES

    read = set(ENV_NAMES)
    assert "XERO_SYNC_SCHEDULE" in read and "INTOAEC_ALERT_EMAIL" in read
    # INTOAEC_DB_URL reaches airflow-init; everywhere else the intoaec_db connection carries it.
    # INTOAEC_DATA_DIR is set outright (the shared volume). INTOAEC_ALLOW_PLAINTEXT_TOKENS is for
    # throwaway demos only: the deployment never lets it in.
    for name in AIRFLOW_SERVICES:
        service = raw()["services"][name]
        named = (passed_through(service) | set(service["environment"])
                 | {"INTOAEC_DB_URL", "INTOAEC_ALLOW_PLAINTEXT_TOKENS"})
        missing = read - named
        assert not missing, (f"{name}: {sorted(missing)} are read by the code but reach no container; add them "
                             "under x-airflow-common's environment in docker-compose.yaml as `NAME:`")


def test_every_line_of_the_env_example_reaches_a_service(example_env):
    """A setting in .env.example that no service names would silently do nothing."""
    text = ENV_EXAMPLE.read_text()
    listed = set(example_env) | set(re.findall(r"^#\s*([A-Z_][A-Z0-9_]*)=", text, re.M))
    compose_text = COMPOSE_FILE.read_text()
    shell = {m.group(1) for m in re.finditer(r"\$\$\{([A-Z_][A-Z0-9_]*)", compose_text)}
    used = interpolated_names(compose_text) | shell
    for service in raw()["services"].values():
        used |= passed_through(service)
    assert not listed - used, f".env.example lists settings no service receives: {sorted(listed - used)}"


def test_pass_through_settings_are_unset_unless_the_env_file_sets_them(filled_env):
    """A bare `NAME:` leaves the code's own default alone (an empty value would not)."""
    scheduler = environment(resolved(filled_env)["services"]["airflow-scheduler"])
    assert "INTOAEC_ALERT_EMAIL" not in scheduler and "AIRFLOW_CONN_XERO_DEFAULT" not in scheduler
    assert scheduler["XERO_SYNC_SCHEDULE"] == filled_env["XERO_SYNC_SCHEDULE"]
    given = resolved({**filled_env, "INTOAEC_ALERT_EMAIL": "ops@example.com"})["services"]
    assert environment(given["airflow-worker"])["INTOAEC_ALERT_EMAIL"] == "ops@example.com"
    assert environment(given["airflow-worker"])["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "24"


# ----------------------------------------------------------------------------- the image's supply chain

def dockerfile_runs() -> list[str]:
    """Each RUN instruction as the shell receives it (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", "")
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def test_the_image_installs_only_hash_checked_pins():
    installs = [command.strip() for run in dockerfile_runs() for command in run.split("&&")
                if re.search(r"\bpip3? install\b", command)]
    assert len(installs) == 2, installs
    locked, project = installs
    assert "--require-hashes" in locked and "-r /opt/intoaec/requirements.hashes.txt" in locked, locked
    unhashed = re.search(r"\s[\"']?(?!-)[A-Za-z0-9_.-]+==", locked)
    assert not unhashed, f"a requirement beside the lock has no hash: {locked}"
    # The project itself has no published hash: nothing but it, and none of its dependencies.
    assert "--no-deps" in project and "--no-build-isolation" in project and project.endswith(" /opt/intoaec"), project
    text = DOCKERFILE.read_text()
    assert "COPY --chown=airflow:0 requirements.hashes.txt" in text and "requirements.txt " not in text
    assert "requirements.hashes.txt" in (REPO / ".dockerignore").read_text()


def test_the_hashed_lock_pins_exactly_what_requirements_txt_pins():
    plain, hashed = pins(REQUIREMENTS), pins(HASHED_REQUIREMENTS)
    assert len(plain) > 100
    moved = {name: (plain.get(name), hashed.get(name)) for name in plain.keys() | hashed.keys()
             if plain.get(name) != hashed.get(name)}
    assert not moved, f"requirements.hashes.txt differs from requirements.txt {moved}: run {REGENERATE_HASHES}"
    unhashed = sorted(name for name, digests in hashes(HASHED_REQUIREMENTS).items() if not digests)
    assert not unhashed, f"no hash for {unhashed}"
    assert "--generate-hashes" in HASHED_REQUIREMENTS.read_text().split("\n", 3)[1]


def test_the_base_image_is_pinned_by_digest_or_says_plainly_it_is_not():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    if "@sha256:" in base:
        assert re.search(r"@sha256:[0-9a-f]{64}$", base), base
    else:
        assert "pinned by tag only" in text and "none is made up here" in text


def test_a_key_given_twice_in_one_mapping_is_refused_as_docker_compose_refuses_it():
    import yaml

    from tests.deploy.compose import _UniqueKeyLoader

    with pytest.raises(yaml.constructor.ConstructorError, match="'B' already defined"):
        yaml.load("x:\n  A: 1\n  B: ${B:-2}\n  B:\n", Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    merged = yaml.load("base: &b {A: 1}\nx:\n  <<: *b\n  A: 2\n", Loader=_UniqueKeyLoader)  # noqa: S506
    assert merged["x"] == {"A": 2}  # overriding a merged key is what `<<` is for
