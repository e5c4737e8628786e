"""`make audit` (tools/audit.py) tells a clean audit from one that could not happen.

pip-audit itself prints "No known vulnerabilities found" and exits 0 when it could look up none
of the pins (every lookup a 404), so these tests hold the wrapper to its three outcomes without
the network: a fake vulnerability API on a local port, and a fake `uv` that writes the report
pip-audit would.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("audit", REPO / "tools" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)

VULN = {"id": "PYSEC-2023-74", "aliases": ["CVE-2023-32681"], "fix_versions": ["2.31.0"]}


def test_a_clean_report_passes():
    status, lines = audit.verdict({"dependencies": [{"name": "a", "version": "1", "vulns": []},
                                                    {"name": "b", "version": "2", "vulns": []}]})
    assert status == 0 and "all 2 pins audited" in lines[0]


def test_a_vulnerable_pin_fails_with_its_fix():
    status, lines = audit.verdict({"dependencies": [{"name": "requests", "version": "2.25.0", "vulns": [VULN]},
                                                    {"name": "b", "version": "2", "vulns": []}]})
    assert status == 1
    assert "requests 2.25.0: PYSEC-2023-74 (CVE-2023-32681); fixed in 2.31.0" in "\n".join(lines)


def test_skipped_pins_are_not_a_clean_audit():
    """What pip-audit reports (exit 0) when the vulnerability API answers 404 for every pin."""
    report = {"dependencies": [{"name": "a", "skip_reason": "Dependency not found on PyPI and could not be audited"},
                               {"name": "b", "version": "2", "vulns": []}]}
    status, lines = audit.verdict(report)
    assert status == 3 and "INCOMPLETE" in lines[0] and "1 of 2 pins were NOT audited" in lines[1]
    assert audit.verdict({"dependencies": []})[0] == 3
    # A vulnerability found among the pins that were audited still says so first.
    report["dependencies"].append({"name": "requests", "version": "2.25.0", "vulns": [VULN]})
    assert audit.verdict(report)[0] == 1


@pytest.fixture
def fake_api():
    """A local stand-in for the JSON API: path -> (status, body)."""
    answers: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers.get(self.path, (404, b""))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", answers
    server.shutdown()


def test_the_canary_needs_the_advisory_it_is_known_to_carry(fake_api):
    base, answers = fake_api
    assert "HTTP 404" in audit.canary_failure(f"{base}/pypi/requests/2.25.0/json")
    answers["/stripped"] = (200, json.dumps({"info": {}, "vulnerabilities": []}).encode())
    assert "without the advisory" in audit.canary_failure(f"{base}/stripped")
    answers["/html"] = (200, b"<html>proxy login</html>")
    assert "could not be read" in audit.canary_failure(f"{base}/html")
    answers["/real"] = (200, json.dumps({"info": {}, "vulnerabilities": [VULN]}).encode())
    assert audit.canary_failure(f"{base}/real") is None
    assert "could not be read" in audit.canary_failure("http://127.0.0.1:9/unreachable", timeout=5)


def test_nothing_runs_when_the_vulnerability_data_is_unreachable(monkeypatch, capsys):
    monkeypatch.setattr(audit, "canary_failure", lambda: "https://pypi.org/... answered HTTP 404")
    monkeypatch.setattr(audit, "run_pip_audit", lambda *a: pytest.fail("pip-audit ran without vulnerability data"))
    assert audit.main(["requirements.txt"]) == 3
    assert "NOT AUDITED" in capsys.readouterr().err


@pytest.mark.parametrize(("report", "status"), [
    ({"dependencies": [{"name": "a", "version": "1", "vulns": []}]}, 0),
    ({"dependencies": [{"name": "a", "version": "1", "vulns": [VULN]}]}, 1),
    (None, 3),  # pip-audit could not be installed, or stopped before writing its report
])
def test_pip_audit_runs_pinned_over_the_pins_as_they_are(monkeypatch, tmp_path, report, status):
    calls = tmp_path / "calls.json"
    fake_uv = tmp_path / "uv"
    fake_uv.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
json.dump(args, open({str(calls)!r}, "w"))
report = {json.dumps(report)!r}
if report != "null":
    open(args[args.index("--output") + 1], "w").write(report)
else:
    sys.exit("error: failed to fetch pip-audit")
""")
    fake_uv.chmod(0o755)
    monkeypatch.setattr(audit, "canary_failure", lambda: None)
    assert audit.main(["--uv", str(fake_uv), str(REPO / "requirements.txt")]) == status
    args = json.loads(calls.read_text())
    assert args[:5] == ["tool", "run", "--from", audit.PIP_AUDIT, "pip-audit"] and "==" in audit.PIP_AUDIT
    assert {"--no-deps", "--disable-pip"} <= set(args)
    assert args[args.index("--requirement") + 1] == str(REPO / "requirements.txt")


def test_make_audit_runs_the_wrapper_over_requirements_txt():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\naudit:", 1)[1].split("\n\n", 1)[0]
    assert "tools/audit.py" in recipe and "requirements.txt" in recipe
    assert "pip-audit" not in (REPO / "requirements.in").read_text()
