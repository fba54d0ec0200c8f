"""The audit chain from the outside: requests and admin changes through the real binary, then
`tollgate audit verify` and `tollgate audit export` on its data directory, the export checked by
an independent verifier (scripts/verify_audit_export.py), and tampering — with the export, and
with the database file itself — named."""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request

import pytest

from conftest import ADMIN_TOKEN, BIN, _admin, _issue_key, _start, _stop

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import verify_audit_export  # noqa: E402


@pytest.fixture(scope="module")
def chained():
    """A data directory after a few requests and admin changes, the server stopped."""
    sim, sim_url = _start(["simulate", "--listen", "127.0.0.1:0"])
    tmp = tempfile.mkdtemp()
    cfg = os.path.join(tmp, "tollgate.yaml")
    with open(cfg, "w") as f:
        f.write(
            f"""
server: {{ listen: 127.0.0.1:0, data_dir: {tmp}/data }}
providers: [{{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1" }}]
routes:
  - {{ name: gpt-4o-mini, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}
  - {{ name: claude-haiku, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}
  - {{ name: text-embedding-3-small, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}
  - {{ name: busy, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}
audit: {{ checkpoint_every: 3 }}
"""
        )
    gw, url = _start(["serve", "--config", cfg], env={"TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        key = _issue_key(url)
        # Every use case stores its payloads in full from here on (the org default policy).
        _admin(url, "PUT", "/policies/default", {"policy": {"logging": "full"}})
        for i in range(5):
            req = urllib.request.Request(
                f"{url}/v1/chat/completions",
                data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hello {i}"}]}).encode(),
                headers={"authorization": f"Bearer {key}", "content-type": "application/json", "x-tollgate-user": "carol"},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200
    finally:
        # SIGTERM: in-flight work drains, the ledger is written, a last checkpoint is signed.
        _stop(gw)
        _stop(sim)
    return cfg, tmp


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def test_the_chain_verifies_and_its_export_verifies_elsewhere(chained):
    cfg, tmp = chained
    r = run("audit", "verify", "--config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK: "), r.stdout
    out = os.path.join(tmp, "export")
    r = run("audit", "export", "--config", cfg, "--out", out)
    assert r.returncode == 0, r.stderr
    ok, message = verify_audit_export.verify(out)
    assert ok, message
    entries = [json.loads(l) for l in open(os.path.join(out, "entries.jsonl"))]
    kinds = {e["entry"]["kind"] for e in entries}
    assert kinds == {"request", "audit"}, kinds
    assert sum(e["entry"]["kind"] == "request" for e in entries) == 5
    # Signed through the last entry: the shutdown checkpoint.
    assert message.endswith(f"signed through entry {len(entries)}"), message
    # No content in the chain: the prompt is not there.
    assert "hello 3" not in open(os.path.join(out, "entries.jsonl")).read()

    # The exported checkpoints, kept outside, checked beside the stored ones: they hold.
    kept = os.path.join(out, "checkpoints.jsonl")
    r = run("audit", "verify", "--config", cfg, "--checkpoints", kept)
    assert r.returncode == 0 and r.stdout.startswith("OK: "), r.stdout + r.stderr
    # A file that is not one is named by its line, and verify cannot run (exit 2).
    bad = os.path.join(tmp, "not-checkpoints.jsonl")
    with open(bad, "w") as f:
        f.write(open(kept).readline() + "not json\n")
    r = run("audit", "verify", "--config", cfg, "--checkpoints", bad)
    assert r.returncode == 2 and "line 2" in r.stderr, (r.returncode, r.stdout, r.stderr)

    # A single changed entry in the export is named by the independent verifier.
    lines = open(os.path.join(out, "entries.jsonl")).read().splitlines()
    e = json.loads(lines[7])
    e["entry"]["data"]["at"] = e["entry"]["data"].get("at", 0) + 1
    lines[7] = json.dumps(e)
    with open(os.path.join(out, "entries.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    ok, message = verify_audit_export.verify(out)
    assert not ok and message.startswith("entry 8:"), message


def test_the_master_key_rotates_and_payloads_still_open(chained):
    cfg, tmp = chained
    new_key = os.path.join(tmp, "new-master-key")
    with open(new_key, "w") as f:
        f.write("ab" * 32)
    r = run("audit", "rotate-master-key", "--config", cfg, "--new-key-file", new_key)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "re-wrapped 1 data keys" in r.stdout, r.stdout
    db = sqlite3.connect(os.path.join(tmp, "data", "tollgate.db"))
    record = db.execute("SELECT record_id FROM payloads WHERE mode = 'full' LIMIT 1").fetchone()[0]
    db.close()
    # Restarted on the new key (from the environment this time), an auditor's read opens it.
    gw, url = _start(["serve", "--config", cfg], env={"TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN, "TOLLGATE_MASTER_KEY": "ab" * 32})
    try:
        env = {**os.environ, "TOLLGATE_TOKEN": ADMIN_TOKEN}
        r = subprocess.run([BIN, "payloads", "read", record, "--reason", "rotation check", "--url", url, "--json"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        v = json.loads(r.stdout)
        assert v["mode"] == "full" and "hello" in v["prompt"], v
        r = subprocess.run([BIN, "erase", "--end-user", "carol", "--url", url, "--json"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["keys_destroyed"] == 1
        r = subprocess.run([BIN, "payloads", "read", record, "--reason", "after erasure", "--url", url], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 1 and "410" in r.stderr, r.stderr
    finally:
        _stop(gw)
    # Still verifies after rotation and erasure.
    r = run("audit", "verify", "--config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tampering_with_the_database_is_named(chained):
    cfg, tmp = chained
    db = sqlite3.connect(os.path.join(tmp, "data", "tollgate.db"))
    seq = db.execute("SELECT seq FROM chain_entries WHERE kind = 'request' ORDER BY seq LIMIT 1 OFFSET 2").fetchone()[0]
    ref = db.execute("SELECT ref FROM chain_entries WHERE seq = ?", (seq,)).fetchone()[0]
    db.execute("UPDATE request_records SET cost_nano_usd = 0 WHERE id = ?", (ref,))
    db.commit()
    db.close()
    r = run("audit", "verify", "--config", cfg)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith(f"BROKEN at entry {seq}:"), r.stdout
    assert ref in r.stdout
    # A range before the change still verifies.
    r = run("audit", "verify", "--config", cfg, "--to", str(seq - 1))
    assert r.returncode == 0, r.stdout
    # A wrong public key: every checkpoint is a forgery.
    r = run("audit", "verify", "--config", cfg, "--public-key", "11" * 32)
    assert r.returncode == 1 and "forged" in r.stdout, r.stdout
    r = run("audit", "verify", "--config", os.path.join(tmp, "missing.yaml"))
    assert r.returncode == 2, r.stdout
