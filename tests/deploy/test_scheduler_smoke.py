"""xero_sync under the components docker-compose.yaml runs, and the compose file's own health checks.

The 50-tenant proof takes minutes (``python -m benchmarks.scale_50_tenants``, numbers in
docs/benchmarks.md); this is the same harness at a size ``make test`` affords: api-server,
dag-processor, scheduler, triggerer and a Celery worker on the local Redis, Airflow's metadata
and IntoAEC's data in two fresh PostgreSQL databases, a 5-tenant sandbox connected through the
OAuth flow, and the scheduler starting ``xero_sync`` by itself. While the components are up,
each service's health check from docker-compose.yaml runs against them (with local ports in
place of the containers' fixed ones), and the UI user signs in with the password set the way
airflow-init sets it, so those commands are known to work without a Docker engine.

On the way the worker is lost (benchmarks.worker_loss): with docker-compose.yaml's heartbeat
and retry timings, it is killed with SIGKILL while tenants' loads are inside their
transactions and a new one starts, as compose restarts it. The run must still succeed, equal
to the truth, with every try the kill ended retried within 2 minutes.
"""

from __future__ import annotations

import subprocess

import pytest
import requests

from benchmarks.scale_50_tenants import RunningStack, ScaleConfig, redis_reachable, run_scale, tail_logs
from benchmarks.worker_loss import RETRY_WITHIN_SECONDS, worker_recovered
from tests.deploy.compose import ENV_EXAMPLE, read_env_file, resolved

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.scheduler]

CHECKED = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker")


def compose_healthchecks() -> dict[str, list[str]]:
    env = {**read_env_file(ENV_EXAMPLE), "FERNET_KEY": "x", "API_SECRET_KEY": "x", "JWT_SECRET": "x",
           "POSTGRES_PASSWORD": "x", "AIRFLOW_DB_PASSWORD": "x", "_AIRFLOW_WWW_USER_PASSWORD": "x",
           "FLOWER_BASIC_AUTH": "x:x", "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec:x@postgres:5432/intoaec"}
    services = resolved(env)["services"]
    return {name: services[name]["healthcheck"]["test"] for name in CHECKED}


def run_healthcheck(test: list[str], stack: RunningStack, hostname: str) -> subprocess.CompletedProcess:
    """A compose health check as Docker runs it: CMD directly, CMD-SHELL through a shell."""
    kind, *args = test
    argv = args if kind == "CMD" else ["/bin/sh", "-c", args[0]]
    argv = [a.replace("localhost:8080", f"127.0.0.1:{stack.api_port}")
             .replace("localhost:8974", f"127.0.0.1:{stack.scheduler_health_port}") for a in argv]
    return subprocess.run(argv, env={**stack.env, "HOSTNAME": hostname}, capture_output=True, text=True,
                          timeout=120)


def test_five_tenants_under_the_scheduler_and_the_compose_health_checks(tmp_path):
    if not redis_reachable():
        pytest.fail("the local Redis at 127.0.0.1:6379 (the Celery broker) does not answer; start it with "
                    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")
    checks = compose_healthchecks()
    outcomes: dict[str, subprocess.CompletedProcess] = {}
    login: dict[str, int] = {}

    def probe(stack: RunningStack) -> None:
        from airflow.utils.net import get_hostname

        # In a container HOSTNAME is the name Airflow records its jobs under; here that is this
        # machine's, and the worker was named after its queue.
        for name, test in checks.items():
            host = stack.worker_name.split("@", 1)[1] if name == "airflow-worker" else get_hostname()
            outcomes[name] = run_healthcheck(test, stack, host)
        token = requests.post(f"http://127.0.0.1:{stack.api_port}/auth/token", timeout=30,
                              json={"username": stack.username, "password": stack.password})
        wrong = requests.post(f"http://127.0.0.1:{stack.api_port}/auth/token", timeout=30,
                              json={"username": stack.username, "password": "not-the-password"})
        login.update(right=token.status_code, wrong=wrong.status_code)

    result = run_scale(ScaleConfig(tenants=5, pool_slots=2, worker_concurrency=3, timeout=600, lose_worker=True),
                       workdir=tmp_path, probe=probe)
    logs = tail_logs(tmp_path / "logs")

    loss = result.worker_loss
    assert loss["killed"] and loss["loads_waiting"], loss  # killed while loads were mid-transaction
    assert any(t["task"] == "tenant.load" for t in loss["tries_lost"]), loss
    for lost in loss["tries_lost"]:
        assert lost["ended_as"] == "failed" and lost["retry_state"] == "success", lost
        assert lost["retry_started_after_s"] <= RETRY_WITHIN_SECONDS, lost
    assert worker_recovered(loss)

    assert result.run["state"] == "success", logs
    assert result.run["run_type"] == "scheduled"  # the scheduler started it; nobody triggered it
    assert result.differences == [] and result.tenants_synced == 5
    assert result.stats["rate_limited"] == {}  # the sandbox refused nothing: every limit held
    assert result.extract_concurrency_peak <= 2  # the pool held
    for tenant in result.tenants:
        assert tenant["peak_calls_per_minute"] <= 60 and tenant["peak_in_flight"] <= 1, tenant
        assert tenant["calls"] > 0 and tenant["landed_s"] > 0, tenant

    failed = {name: (o.returncode, o.stdout[-800:], o.stderr[-800:]) for name, o in outcomes.items()
              if o.returncode != 0}
    assert set(outcomes) == set(CHECKED) and not failed, failed
    assert login["right"] in (200, 201) and login["wrong"] == 401, login
