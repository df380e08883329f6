"""How long tests wait for a server to be ready, and what it says it is still waiting for.

Plain helpers shared by _app.py (in-process apps) and _server.py (`foretell serve` processes).
A server is ready once /health/ready answers 200: no model is still deploying. Tests wait for
that, not for a fixed time, so the wait is generous: a loaded CI machine may take minutes to
start replica processes, and a wait that ends early is a flaky test, not a finding.
"""

from __future__ import annotations

from typing import Any

import httpx

# Long enough for a machine running ten other jobs; a start that takes longer is a hang, and the
# error then says which models were still deploying. pytest's per-test timeout (pyproject) is
# above it, so this message, not a stack dump, is what a slow start reports.
READY_TIMEOUT_S = 300.0

_SETTLED = frozenset({"ready", "failed", "stopped"})


def still_deploying(response: httpx.Response | None) -> str:
    """What a /health/ready answer says is not ready yet, for a timeout message: each unsettled
    deployment with its status when the answer lists them (it does for an admin key), else
    the answer as it is."""
    if response is None:
        return "no answer from /health/ready"
    try:
        body: Any = response.json()
    except ValueError:
        return f"/health/ready answered {response.status_code}: {response.text[:500]!r}"
    listed = body.get("deployments") if isinstance(body, dict) else None
    if isinstance(listed, dict) and listed and all(isinstance(n, int) for n in listed.values()):
        # Without a key the answer counts deployments by status and names none.
        counts = ", ".join(f"{n} {status}" for status, n in sorted(listed.items()))
        return f"deployments by status: {counts} (asked without a key: no models named)"
    deployments = _deployments(listed)
    if deployments is None:
        return f"/health/ready answered {response.status_code} without a list: {body}"
    waiting = {ref: status for ref, status in deployments.items() if status not in _SETTLED}
    if not waiting:
        return f"/health/ready answered {response.status_code}, nothing deploying: {body}"
    listed = ", ".join(f"{ref} ({status})" for ref, status in sorted(waiting.items()))
    return f"still deploying: {listed}"


def _deployments(listed: Any) -> dict[str, str] | None:
    """{ref: status} from `{"demo/iris:1": "ready"}` or `[{"ref": ..., "status": ...}]`."""
    if isinstance(listed, dict):
        return {str(ref): str(status) for ref, status in listed.items()}
    if isinstance(listed, list) and all(isinstance(d, dict) for d in listed):
        return {
            str(d.get("ref") or d.get("model") or d.get("id")): str(d.get("status")) for d in listed
        }
    return None
