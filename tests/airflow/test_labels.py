"""The grid's labels: the name before the task body runs, and kept on a try that waits to retry.

tests/plugins/test_first_hour.py sees both in the real grid; these pin the two parts.
"""

from __future__ import annotations

from types import SimpleNamespace

import jinja2
import pytest
from intoaec_xero.airflow import labels

pytestmark = pytest.mark.airflow


class _TaskInstance:
    map_index = 1

    def xcom_pull(self, task_ids: str):
        assert task_ids == "discover_tenants"
        return [{"tenant_name": "Harbourside"}, {"tenant_name": "Meridian"}]


def test_the_label_names_the_organisation_before_the_task_body_sets_it():
    template = jinja2.Environment().from_string(labels.TENANT)
    assert template.render(ti=_TaskInstance()) == "Meridian"  # item 1 of the list the mapping came from
    assert template.render(ti=_TaskInstance(), tenant_name="Set by the body") == "Set by the body"


def test_a_try_that_waits_to_retry_keeps_its_label(monkeypatch):
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import RetryTask

    airflows_own = getattr(task_runner._finalize_task_failure, "wrapped", task_runner._finalize_task_failure)
    monkeypatch.setattr(task_runner, "_finalize_task_failure", airflows_own)
    ti = SimpleNamespace(rendered_map_index="Meridian", end_date=None, _failure_metrics_emitted=True,
                         _ti_context_from_server=SimpleNamespace(should_retry=True))
    unpatched, _ = task_runner._finalize_task_failure(ti)
    assert isinstance(unpatched, RetryTask) and unpatched.rendered_map_index is None  # Airflow's own message

    labels.keep_label_on_retry()
    labels.keep_label_on_retry()  # once is enough: a second call does not wrap again
    message, state = task_runner._finalize_task_failure(ti)
    assert isinstance(message, RetryTask) and message.rendered_map_index == "Meridian"
    assert state == "up_for_retry"
    assert task_runner._finalize_task_failure.keeps_label is True
