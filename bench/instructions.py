#!/usr/bin/env python3
"""Instructions per request through the gateway, counted by valgrind's callgrind.

The overhead benchmark's figures move with whatever else the shared machine is doing; an
instruction count does not. This script starts the simulator and a gateway under
`valgrind --tool=callgrind`, sets the gateway up as bench/overhead.py does (a production use case
with limits and hard budgets, a key, with --masking the tokenize/mask policy), warms it up, and
then counts the instructions the gateway process (all its threads: the request path, the ledger
writer, SQLite) executes while it answers N requests sent at a fixed rate. Instructions are not
time (cache misses, system calls and waiting are not in them), but a change that makes the request
path do less shows here plainly, run to run.

Usage: bench/instructions.py --bin BIN [--against OTHER_BIN] [--requests 1000] [--rate 50] [--masking]
Requires: valgrind and oha on PATH.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import json
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overhead  # noqa: E402  (the same setup, key and bodies)


def dump_totals(pid, out_dir):
    """Asks callgrind to dump what it counted since the last dump; returns that dump's Ir."""
    before = set(os.listdir(out_dir))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    new = sorted(set(os.listdir(out_dir)) - before)
    if not new:
        sys.exit("callgrind wrote no dump")
    total = 0
    for name in new:
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                m = re.match(r"(?:summary|totals):\s+(\d+)", line)
                if m:
                    total = max(total, int(m.group(1)))
    return total


def measure(bin_path, sim_url, args, tmp, name):
    cfg = os.path.join(tmp, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(f'server: {{ listen: "127.0.0.1:0", data_dir: "{tmp}/{name}" }}\n'
                f"""providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1" }}
routes:
  - name: gpt-4o-mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
""")
    out_dir = os.path.join(tmp, f"{name}-cg")
    os.makedirs(out_dir)
    gw, url = overhead.start("valgrind", ["--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out",
                                          bin_path, "serve", "--config", cfg, "--log-format", "json"],
                             env={"RUST_LOG": "warn", "TOLLGATE_ADMIN_TOKEN": overhead.ADMIN}, wait=300)
    try:
        key = overhead.issue_key(url)
        if args.masking:
            req = urllib.request.Request(f"{url}/admin/v1/policies/default", method="PUT",
                                         data=json.dumps({"policy": overhead.MASKING_POLICY}).encode(),
                                         headers={"authorization": f"Bearer {overhead.ADMIN}",
                                                  "content-type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()
        target = f"{url}/v1/chat/completions"
        run_oha(target, key, max(args.requests // 5, 50), args.rate)  # warm-up
        dump_totals(gw.pid, out_dir)
        answered = run_oha(target, key, args.requests, args.rate)
        ir = dump_totals(gw.pid, out_dir)
    finally:
        gw.terminate()
        gw.wait(120)
    return ir, answered


def run_oha(url, key, n, rate):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-n", str(n), "-c", "4", "-q", str(rate),
           "-m", "POST", "-H", "content-type: application/json", "-H", f"authorization: Bearer {key}",
           "-d", overhead.BODY, url]
    data = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    codes = data.get("statusCodeDistribution", {})
    if set(codes) != {"200"}:
        sys.exit(f"not every request answered 200: {codes}")
    return sum(codes.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--against")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--masking", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind dumps here (for callgrind_annotate)")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "oha"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    if args.masking:
        overhead.BODY = overhead.MASKING_BODY
    sim, sim_url = overhead.start(args.bin, ["simulate", "--listen", "127.0.0.1:0"])
    tmp = tempfile.mkdtemp()
    rows = []
    try:
        for name, b in [("gateway", args.bin)] + ([("against", args.against)] if args.against else []):
            ir, n = measure(b, sim_url, args, tmp, name)
            rows.append((name, b, ir, n))
            print(f"{name} ({b}): {ir:,} instructions for {n} requests = {ir / n:,.0f} per request",
                  flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
        if args.keep:
            for name, *_ in rows:
                shutil.copytree(os.path.join(tmp, f"{name}-cg"), os.path.join(args.keep, name), dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if len(rows) == 2:
        print(f"against / gateway: {rows[1][2] / rows[1][3] / (rows[0][2] / rows[0][3]):.3f}")


if __name__ == "__main__":
    main()
