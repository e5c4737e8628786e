"""The grid's label for a mapped task: the organisation's (or connection's) name, on every try.

Airflow renders ``map_index_template`` before the task body runs and again after it. The task
body puts the name into the context, but Airflow 3.3 keeps only the label rendered *before*
the body on a try that fails and waits to retry (the one rendered after it is dropped), so
that row would show its bare index. The template therefore also finds the name before the
body runs: in the list the mapping was expanded from (the XCom of ``source``), at this task's
map index.
"""

from __future__ import annotations


def mapped_label(name: str, source: str, key: str | None = None) -> str:
    """``{{ <name> }}`` from the context, else item ``ti.map_index`` of ``source``'s XCom (its ``key``)."""
    item = f"ti.xcom_pull(task_ids='{source}')[ti.map_index]" + (f".{key}" if key else "")
    return f"{{% if {name} is defined %}}{{{{ {name} }}}}{{% else %}}{{{{ {item} }}}}{{% endif %}}"


TENANT = mapped_label("tenant_name", "discover_tenants", "tenant_name")
CONNECTION = mapped_label("xero_conn_id", "connections")


def keep_label_on_retry() -> None:
    """Carry a failed try's label into Airflow's retry message, as its other end states carry it.

    The Task SDK (1.3.2) builds the ``RetryTask`` message without ``rendered_map_index``, and the
    API server then stores that missing label as None: every try waiting to retry loses its
    name in the grid (``_finalize_task_failure`` in ``airflow/sdk/execution_time/task_runner.py``;
    the ``TaskState`` it builds for a final failure does carry it). This wraps that function
    to add the label the task had; it changes nothing once Airflow sends the label itself.
    """
    import sys

    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if task_runner is None:  # not a task process (the DAG processor, a test): nothing runs tasks here
        return
    from airflow.sdk.execution_time.comms import RetryTask

    original = task_runner._finalize_task_failure
    if getattr(original, "keeps_label", False):
        return

    def finalize(ti, *args, **kwargs):
        message, state = original(ti, *args, **kwargs)
        if isinstance(message, RetryTask) and message.rendered_map_index is None and ti.rendered_map_index:
            message = message.model_copy(update={"rendered_map_index": ti.rendered_map_index})
        return message, state

    finalize.keeps_label = True  # type: ignore[attr-defined]
    finalize.wrapped = original  # type: ignore[attr-defined]
    setattr(task_runner, "_finalize_task_failure", finalize)  # noqa: B010 - a module found at run time


keep_label_on_retry()
