"""Alert e-mails quote what Xero and its users wrote: names and errors arrive as text, never as markup.

The e-mail goes through Airflow's SMTP notifier and hook to a local SMTP server that keeps what
it receives, so the test reads the message a mail client would get.
"""

from __future__ import annotations

import email
import json
import socketserver
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from intoaec_xero.errors import IntoAECXeroError

pytestmark = [pytest.mark.airflow]

ORG = "<script>alert(1)</script> & Co"
ERROR = "Xero answered 400: <b>ValidationException</b> for invoice INV-0042"


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT; no TLS, no auth."""

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        inbox: Inbox = self.server.inbox
        recipients: list[str] = []
        self._reply("220 inbox.test ESMTP")
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command[:4].upper()
            if verb == "EHLO":
                self._reply("250-inbox.test")
                self._reply("250 8BITMIME")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)  # undo dot-stuffing
                inbox.messages.append(email.message_from_bytes(b"".join(lines), policy=policy.default))
                inbox.recipients.append(recipients)
                recipients = []
                self._reply("250 OK queued")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:  # HELO, MAIL, RSET, NOOP
                self._reply("250 OK")


@pytest.fixture
def inbox(monkeypatch):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSession)
    server.daemon_threads = True
    server.inbox = Inbox()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": server.server_address[1],
        "extra": {"from_email": "airflow@intoaec.test", "disable_ssl": True, "disable_tls": True,
                  "retry_limit": 0, "timeout": 10},
    }))
    monkeypatch.setenv("INTOAEC_ALERT_SMTP_CONN", "alerts_smtp")
    monkeypatch.setenv("INTOAEC_ALERT_EMAIL", "data-team@intoaec.test")
    monkeypatch.delenv("INTOAEC_ALERT_SLACK_CONN", raising=False)
    try:
        yield server.inbox
    finally:
        server.shutdown()
        server.server_close()


class _Reader(HTMLParser):
    """What a mail client shows: the text, and which elements the HTML really has."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text += data


def _html(message: EmailMessage) -> tuple[str, _Reader]:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, message
    html = part.get_content()
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return html, reader


def test_a_failure_e_mail_quotes_the_organisation_and_the_error(inbox):
    from intoaec_xero.airflow.alerts import SyncFailureNotifier

    task = SimpleNamespace(dag_id="xero_sync", task_id="sync_tenant", run_id="scheduled__2026-12-01T00:00:00+00:00",
                           rendered_map_index=None)
    # Called the way Airflow calls an on_failure_callback: with the failed task's context.
    SyncFailureNotifier()({"task_instance": task, "tenant_name": ORG, "exception": IntoAECXeroError(ERROR)})

    (message,) = inbox.messages
    assert inbox.recipients == [["data-team@intoaec.test"]]
    assert message["Subject"] == f"Xero sync failed: xero_sync.sync_tenant for {ORG}"  # a header is plain text
    html, reader = _html(message)
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "&lt;b&gt;ValidationException&lt;/b&gt;" in html
    assert reader.tags == ["p", "strong", "pre"]  # nothing the names or the error brought in
    assert ORG in reader.text and ERROR in reader.text  # read back exactly as written
    assert "run: scheduled__2026-12-01T00:00:00+00:00" in reader.text


def test_a_freshness_alert_quotes_the_organisation_in_its_body(inbox):
    from intoaec_xero.airflow.alerts import deliver

    incident = f"{ORG} has not synced for 3.0 h; last error: {ERROR}"
    assert deliver(f"Xero sync: {ORG} needs attention", incident) == ["log", "email"]

    (message,) = inbox.messages
    html, reader = _html(message)
    assert "<script" not in html and "<b>" not in html
    assert reader.tags == ["p", "strong", "pre"]
    assert incident in reader.text


def test_a_name_with_a_line_break_is_still_e_mailed_and_adds_no_header(inbox):
    from intoaec_xero.airflow.alerts import deliver

    # Python's e-mail package refuses a header holding a line break: unflattened, the alert was lost.
    assert deliver("Xero sync: Evil Ltd\r\nBcc: thief@example.test needs attention", "stale") == ["log", "email"]

    (message,) = inbox.messages
    assert inbox.recipients == [["data-team@intoaec.test"]]
    assert message["Bcc"] is None
    assert message["Subject"] == "Xero sync: Evil Ltd Bcc: thief@example.test needs attention"


def test_slack_text_escapes_its_markup():
    from intoaec_xero.airflow.alerts import slack_text

    text = slack_text(f"Xero sync failed for {ORG}", "<!channel> <https://evil.test|click> & <b>")
    assert text == ("*Xero sync failed for &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co*\n"
                    "&lt;!channel&gt; &lt;https://evil.test|click&gt; &amp; &lt;b&gt;")
