"""`make audit`: known vulnerabilities in the pinned dependencies, or a plain "not audited".

pip-audit looks each pin up in PyPI's JSON API (https://pypi.org/pypi/NAME/VERSION/json), whose
"vulnerabilities" come from the Python Packaging Advisory Database. When a lookup fails with a
404 (a PyPI mirror or proxy that serves packages but not that API does exactly this), pip-audit
skips the package and still prints "No known vulnerabilities found" and exits 0, even with every
package skipped. So this wrapper:

1. asks the API first about a release with a published advisory (the canary); unless the
   advisory comes back, the vulnerability data is not reachable from here and nothing is run;
2. runs pip-audit (a pinned version, through `uv tool run`: nothing is added to the project's
   venv or lock) over the pins, without resolving or installing anything;
3. counts a skipped package as not audited.

Exit status: 0 every pin was audited and none has a known vulnerability; 1 at least one pin has
a known vulnerability (each is listed with the versions that fix it); 3 not audited, or not
completely: the vulnerability data could not be reached, pip-audit could not be installed or did
not finish, or some pins were skipped. (`make` itself exits 2 on any failure; its message names
the recipe's status: "Error 1" or "Error 3".)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

PIP_AUDIT = "pip-audit==2.10.1"
# requests 2.25.0 carries a published advisory (fixed in 2.31.0): a source of vulnerability
# data that reports nothing for it is not one.
CANARY = "https://pypi.org/pypi/requests/2.25.0/json"

CLEAN, VULNERABLE, NOT_AUDITED = 0, 1, 3


def canary_failure(url: str = CANARY, timeout: float = 20) -> str | None:
    """Why the vulnerability data cannot be trusted from here, or None when it can."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        return f"{url} answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"{url} could not be read: {getattr(error, 'reason', error)}"
    if not isinstance(body, dict) or not body.get("vulnerabilities"):
        return f"{url} answered without the advisory it is known to carry"
    return None


def verdict(report: dict) -> tuple[int, list[str]]:
    """pip-audit's JSON report as an exit status and the lines that explain it."""
    dependencies = report.get("dependencies") or []
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = len(dependencies) - len(skipped)
    lines = []
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            lines.append(f"  {dependency['name']} {dependency['version']}: {vuln['id']}"
                         f"{f' ({aliases})' if aliases else ''}; fixed in {fixes}")
    if skipped:
        lines.append(f"  {len(skipped)} of {len(dependencies)} pins were NOT audited, e.g. "
                     f"{skipped[0]['name']}: {skipped[0]['skip_reason']}")
    if vulnerable:
        count = sum(len(d["vulns"]) for d in vulnerable)
        return VULNERABLE, [f"audit: {count} known vulnerabilities in {len(vulnerable)} of {audited} audited pins:",
                            *lines]
    if skipped:
        return NOT_AUDITED, [f"audit: INCOMPLETE: no known vulnerabilities in the {audited} pins audited, "
                             "but not every pin was audited:", *lines]
    if not dependencies:
        return NOT_AUDITED, ["audit: NOT AUDITED: pip-audit reported no pins at all"]
    return CLEAN, [f"audit: all {audited} pins audited; no known vulnerabilities"]


def run_pip_audit(uv: str, requirements: Path) -> tuple[dict | None, str]:
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "report.json"
        done = subprocess.run(
            [uv, "tool", "run", "--from", PIP_AUDIT, "pip-audit", "--requirement", str(requirements),
             # Every pin is exact: audit them as they are, with nothing resolved or installed.
             "--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json", "--output", str(output)],
            capture_output=True, text=True)
        if not output.is_file():
            return None, (done.stderr or done.stdout).strip()
        return json.loads(output.read_text()), done.stderr.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", type=Path, nargs="?", default=Path("requirements.txt"))
    parser.add_argument("--uv", default="uv", help="the uv executable that runs pip-audit")
    args = parser.parse_args(argv)

    failure = canary_failure()
    if failure:
        print(f"audit: NOT AUDITED: the vulnerability data pip-audit reads (PyPI's JSON API) is not reachable "
              f"from this machine: {failure}. Nothing in {args.requirements} was checked; run `make audit` "
              "where https://pypi.org/pypi/ answers.", file=sys.stderr)
        return NOT_AUDITED
    report, log = run_pip_audit(args.uv, args.requirements)
    if report is None:
        print(f"audit: NOT AUDITED: {PIP_AUDIT} did not complete:\n{log}", file=sys.stderr)
        return NOT_AUDITED
    status, lines = verdict(report)
    print("\n".join(lines), file=sys.stdout if status == CLEAN else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
