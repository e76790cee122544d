"""Dependency audit: pip-audit over requirements.txt (the pinned runtime dependencies and what they pull in).

Exit status 1 when a dependency has a known vulnerability that is not an accepted exception below (each
exception is justified in docs/security.md). When the vulnerability service cannot be reached or knows
none of the packages (no network, a mirror without PyPI's per-version JSON API), the audit says so
plainly and exits 0: nothing was checked, which is reported, not passed off as clean. Set
WEFT_AUDIT_STRICT=1 to fail in that case too; WEFT_AUDIT_SERVICE=osv to ask OSV instead of PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Vulnerability id -> why it does not apply to Weft. Keep in step with docs/security.md.
ACCEPTED: dict[str, str] = {}


def main() -> int:
    strict = os.environ.get("WEFT_AUDIT_STRICT", "") in ("1", "true", "yes")
    service = os.environ.get("WEFT_AUDIT_SERVICE", "pypi")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "-r", str(REPO / "requirements.txt"), "-f", "json",
                   "-o", str(report), "--progress-spinner", "off", "--timeout", "30", "-s", service]
        for vuln_id in ACCEPTED:
            command += ["--ignore-vuln", vuln_id]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if not report.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print("dependency audit could not run (pip-audit failed before auditing, usually no network): "
                  + " | ".join(tail))
            return 1 if strict else 0
        data = json.loads(report.read_text())
    dependencies = data.get("dependencies", [])
    found = [(d["name"], d["version"], v["id"], ", ".join(v.get("fix_versions") or []) or "no fix yet")
             for d in dependencies for v in d.get("vulns", [])]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    if found:
        print(f"dependency audit: {len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'}:")
        for name, version, vuln_id, fixed in found:
            print(f"  {name} {version}: {vuln_id} (fixed in: {fixed})")
        print("Upgrade the pin in requirements.txt, or justify an exception in docs/security.md and .ci/audit.py.")
        return 1
    if audited == 0:
        reason = skipped[0]["skip_reason"] if skipped else "no dependencies reported"
        print(f"dependency audit could not check anything: the {service} vulnerability service knew none of the "
              f"{len(dependencies)} packages (first: {reason}). This is not a clean result; run it where "
              "pypi.org (or api.osv.dev) is reachable.")
        return 1 if strict else 0
    print(f"dependency audit: no known vulnerabilities in {audited} packages"
          + (f" ({len(skipped)} could not be audited: {', '.join(d['name'] for d in skipped)})" if skipped else "")
          + (f"; accepted exceptions: {', '.join(ACCEPTED)}" if ACCEPTED else ""))
    return 1 if strict and skipped else 0


if __name__ == "__main__":
    sys.exit(main())
