"""The container's health check: GET /_motet/health on this machine, with the operator token
when one is set (MOTET_TOKEN), exit 0 when it answers "ok". Standard library only."""

import json
import os
import sys
import urllib.request

port = os.environ.get("MOTET_PORT", "3000")
request = urllib.request.Request(f"http://127.0.0.1:{port}/_motet/health")
token = os.environ.get("MOTET_TOKEN", "").strip()
if token:
    request.add_header("Authorization", f"Bearer {token}")
try:
    with urllib.request.urlopen(request, timeout=3) as response:
        status = json.load(response).get("status")
except Exception as exc:
    sys.exit(f"unhealthy: {exc}")
sys.exit(0 if status == "ok" else f"unhealthy: status {status!r}")
