"""Starts `tollgate simulate` and `tollgate serve` (the built binary, on free ports) for the SDK tests."""

import json
import os
import re
import urllib.request
import subprocess
import tempfile
import threading

import pytest

BIN = os.environ.get("TOLLGATE_BIN", "target/debug/tollgate")
ADMIN_TOKEN = "tga_sdk_test_admin_token_0123456789"
KEY = {}


def _start(args, env=None):
    proc = subprocess.Popen(
        [BIN, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    found = {}
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            m = re.search(r"http://[0-9.:]+", line)
            if m and not ready.is_set():
                found["url"] = m.group(0)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(20):
        proc.kill()
        raise RuntimeError(f"{args[0]} printed no URL")
    return proc, found["url"]


def _stop(proc):
    proc.terminate()
    try:
        # A graceful stop writes the ledger's last batch and signs the audit chain's checkpoint
        # (which tests then read); the bound only ends a hung process, on a loaded machine too.
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def gateway_url():
    sim, sim_url = _start(["simulate", "--listen", "127.0.0.1:0", "--api-key", "upstream-key"])
    busy, busy_url = _start(["simulate", "--listen", "127.0.0.1:0", "--error-rate", "1", "--error-status", "429"])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "tollgate.yaml")
        with open(cfg, "w") as f:
            f.write(
                f"""
server:
  listen: 127.0.0.1:0
  data_dir: {tmp}/data
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1", api_key: "${{UPSTREAM_KEY}}" }}
  - {{ name: sim-anthropic, type: anthropic, base_url: "{sim_url}", api_key: "${{UPSTREAM_KEY}}" }}
  - {{ name: busy, type: openai_compatible, base_url: "{busy_url}/v1" }}
routes:
  - name: gpt-4o-mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: claude-haiku
    deployments: [{{ provider: sim-anthropic, model: claude-3-5-haiku-latest }}]
  - name: text-embedding-3-small
    deployments: [{{ provider: sim, model: text-embedding-3-small }}]
  - name: busy
    retries: 0
    deployments: [{{ provider: busy, model: gpt-4o-mini }}]
"""
            )
        gw, gw_url = _start(
            ["serve", "--config", cfg],
            env={"UPSTREAM_KEY": "upstream-key", "TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        try:
            KEY["secret"] = _issue_key(gw_url)
            yield gw_url + "/v1"
        finally:
            _stop(gw)
            _stop(sim)
            _stop(busy)


def _admin(base, method, path, body):
    req = urllib.request.Request(
        f"{base}/admin/v1{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _issue_key(base):
    """A pod, a production use case allowed every route, and a key for it, through the admin API."""
    pod = _admin(base, "POST", "/pods", {"name": "sdk-tests"})
    routes = ["gpt-4o-mini", "claude-haiku", "text-embedding-3-small", "busy"]
    uc = _admin(base, "POST", "/use-cases", {"pod_id": pod["id"], "name": "sdk", "routes": routes})
    for stage in ("pilot", "production"):
        _admin(base, "POST", f"/use-cases/{uc['id']}/stage", {"to": stage, "reason": "SDK tests", "override": True})
    return _admin(base, "POST", "/keys", {"use_case_id": uc["id"], "name": "sdk"})["secret"]
