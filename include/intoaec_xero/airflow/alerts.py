"""Alerts for the data team, through Airflow's notifiers.

On a task's final failure (never per retry: Airflow calls ``on_failure_callback`` only when no
retry is left) and when a tenant's data turns stale. E-mail goes through the SMTP provider
when ``INTOAEC_ALERT_EMAIL`` is set; a Slack webhook connection named by
``INTOAEC_ALERT_SLACK_CONN`` is used when the Slack provider is installed; the task log
always gets the message.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def deliver(subject: str, body: str) -> list[str]:
    """Send one alert on every configured channel; returns the channels used."""
    channels = ["log"]
    log.error("ALERT: %s — %s", subject, body)
    email = os.environ.get("INTOAEC_ALERT_EMAIL")
    if email:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(to=email, subject=subject, html_content=f"<pre>{body}</pre>",
                         smtp_conn_id=os.environ.get("INTOAEC_ALERT_SMTP_CONN", "smtp_default")).notify({})
            channels.append("email")
        except Exception as error:  # noqa: BLE001 - an alert channel failing must not hide the alert
            log.warning("The e-mail alert could not be sent: %s", error)
    slack = os.environ.get("INTOAEC_ALERT_SLACK_CONN")
    if slack:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            SlackWebhookNotifier(slack_webhook_conn_id=slack, text=f"*{subject}*\n{body}").notify({})
            channels.append("slack")
        except Exception as error:  # noqa: BLE001
            log.warning("The Slack alert could not be sent: %s", error)
    return channels


class SyncFailureNotifier(BaseNotifier):
    """Names the tenant and the reason, not just the task id."""

    def notify(self, context: dict[str, Any]) -> None:
        ti = context.get("task_instance") or context.get("ti")
        dag_id = getattr(ti, "dag_id", "xero_sync")
        task_id = getattr(ti, "task_id", "?")
        tenant = context.get("tenant_name") or getattr(ti, "rendered_map_index", None) or ""
        error = context.get("exception")
        subject = f"Xero sync failed: {dag_id}.{task_id}" + (f" for {tenant}" if tenant else "")
        body = f"{error}" if error else "see the task log"
        run_id = getattr(ti, "run_id", "")
        deliver(subject, f"{body}\nrun: {run_id}")
