"""Alerts for the data team, through Airflow's notifiers.

On a task's final failure (never per retry: Airflow calls ``on_failure_callback`` only when no
retry is left) and when a tenant's data turns stale. E-mail goes through the SMTP provider
when ``INTOAEC_ALERT_EMAIL`` is set; a Slack webhook connection named by
``INTOAEC_ALERT_SLACK_CONN`` is used when the Slack provider is installed; the task log
always gets the message.

Organisation names and error texts come from Xero and its users, so every channel gets them
quoted for its own markup: HTML-escaped in the e-mail, Slack's ``& < >`` escapes in Slack (where
``<!channel>`` would otherwise ping everyone), and no line break in the e-mail's subject header.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from intoaec_xero.environment import RuntimeSettings, current

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


def deliver(subject: str, body: str, settings: RuntimeSettings | None = None) -> list[str]:
    """Send one alert on every configured channel (``settings``, else this process's); returns the channels used."""
    settings = settings or current()
    channels = ["log"]
    log.error("ALERT: %s — %s", subject, body)
    email = settings.alert_email
    if email:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(to=email, subject=email_subject(subject), html_content=email_html(subject, body),
                         smtp_conn_id=settings.alert_smtp_conn).notify({})
            channels.append("email")
        except Exception as error:  # noqa: BLE001 - an alert channel failing must not hide the alert
            log.warning("The e-mail alert could not be sent: %s", error)
    slack = settings.alert_slack_conn
    if slack:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            SlackWebhookNotifier(slack_webhook_conn_id=slack, text=slack_text(subject, body)).notify({})
            channels.append("slack")
        except Exception as error:  # noqa: BLE001
            log.warning("The Slack alert could not be sent: %s", error)
    return channels


def email_subject(subject: str) -> str:
    """One line: a header cannot carry a line break (a name holding one would start a new header)."""
    return " ".join(subject.splitlines()).strip()


def email_html(subject: str, body: str) -> str:
    """The e-mail's HTML: the subject as its heading and the body verbatim, both escaped."""
    return (f"<p><strong>{escape(email_subject(subject))}</strong></p>\n"
            f'<pre style="white-space: pre-wrap">{escape(body)}</pre>')


def slack_text(subject: str, body: str) -> str:
    """Slack mrkdwn: only ``&``, ``<`` and ``>`` are markup there, and they are escaped like HTML's."""
    def quoted(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    return f"*{quoted(subject)}*\n{quoted(body)}"


class SyncFailureNotifier(BaseNotifier):
    """Names the tenant and the reason, not just the task id."""

    def notify(self, context: Context) -> None:
        values: Mapping[str, Any] = context  # it also carries keys of ours, e.g. tenant_name for the grid's label
        ti = values.get("task_instance") or values.get("ti")
        dag_id = getattr(ti, "dag_id", "xero_sync")
        task_id = getattr(ti, "task_id", "?")
        tenant = values.get("tenant_name") or getattr(ti, "rendered_map_index", None) or ""
        error = values.get("exception")
        subject = f"Xero sync failed: {dag_id}.{task_id}" + (f" for {tenant}" if tenant else "")
        body = f"{error}" if error else "see the task log"
        run_id = getattr(ti, "run_id", "")
        deliver(subject, f"{body}\nrun: {run_id}")
