"""docker-compose.yaml, Dockerfile and .env.example, checked statically (no Docker engine here).

The file is resolved as Compose resolves it (anchors, merge keys, interpolation from
.env.example with its empty secrets filled in), then held to what the deployment promises:
the official 3.x services on CeleryExecutor, the image at the pinned Airflow, the project's
dags/ and plugins/ everywhere, one raw-page volume shared by every worker, two separate
databases, an init that migrates both and creates the pool, health checks everywhere, and
secrets that only ever come from the git-ignored .env.
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
    MissingVariable,
    environment,
    interpolate,
    interpolated_names,
    pinned_airflow_version,
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
SECRETS = ("FERNET_KEY", "API_SECRET_KEY", "JWT_SECRET", "POSTGRES_PASSWORD", "_AIRFLOW_WWW_USER_PASSWORD")


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def filled_env(example_env) -> dict[str, str]:
    """.env.example as an operator fills it in: every empty secret given a value."""
    return {**example_env, **{name: f"test-{name.lower()}" for name in SECRETS},
            "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec:s3cret@postgres:5432/intoaec"}


@pytest.fixture(scope="module")
def compose(filled_env) -> dict:
    return resolved(filled_env)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def airflow_services(services):
    return {name: s for name, s in services.items() if name.startswith("airflow-") or name == "flower"}


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


def test_the_image_is_built_from_the_pinned_airflow(compose, services, example_env):
    version = pinned_airflow_version()
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(version)}$", dockerfile, re.M), "Dockerfile's AIRFLOW_VERSION"
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert base.startswith("apache/airflow:") and "${AIRFLOW_VERSION}" in base, base
    assert '"apache-airflow==${AIRFLOW_VERSION}" -r' in dockerfile, "pip may move Airflow off the pin"
    assert "requirements.txt" in dockerfile and "/opt/intoaec" in dockerfile
    default_image = re.search(r"\$\{AIRFLOW_IMAGE_NAME:-([^}]+)\}", COMPOSE_FILE.read_text()).group(1)
    assert default_image.endswith(f":{version}"), default_image
    assert example_env["AIRFLOW_IMAGE_NAME"].endswith(f":{version}")
    for name, service in airflow_services(services).items():
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
    assert metadata.database == "airflow" == environment(services["postgres"])["POSTGRES_DB"]
    assert intoaec.database != metadata.database and intoaec.username != metadata.username


def test_init_migrates_both_databases_and_creates_the_pool(services):
    init = services["airflow-init"]
    script = init["command"][-1]
    assert init["entrypoint"] == "/bin/bash" and "set -euo pipefail" in script
    assert "airflow db migrate" in script
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
    for name, service in airflow_services(services).items():
        assert service["env_file"] == [".env"], name
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
