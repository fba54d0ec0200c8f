#!/usr/bin/env python3
"""Gateway overhead benchmark: the simulator called directly vs through the gateway.

Starts `tollgate simulate` (zero latency) and `tollgate serve` (routing to it) on free loopback
ports, issues a key through the admin API for a use case with rate limits and hard budgets (key, use
case, pod and org level, all far above the load so none rejects), and then drives both with the same load tool (oha) and the same request body:

  * fixed rates (open loop, --latency-correction so queueing delay counts): 500 and 2,000 req/s,
    direct and gateway interleaved round by round;
  * maximum throughput at a fixed connection count.

Added latency = gateway percentile - direct percentile of the same round. Prints a Markdown table
and writes it, with the raw oha JSON, under bench/results/.

With --traces RATIO a second gateway runs beside the first, identical but tracing (OTLP/HTTP to a
sink in this script that accepts and counts exports) with `sample_ratio: RATIO`; each round drives
direct and then both gateways, so the two overheads are compared side by side. The gateways take
turns going first (the second of a round measures worse on this machine, whatever it runs).

With --against BIN one more gateway runs beside the first, the same but for its binary: an A/B of
two builds on the same machine minutes.

Every gateway run also reports the gateway's own p99, from its histograms scraped before and after
the run: the time it adds (`tollgate_gateway_overhead_seconds`) and the upstream call as it sees it
(`tollgate_upstream_duration_seconds`), each as the upper bound of the bucket holding the 99th
percentile (the buckets double: 0.16, 0.32, 0.64 ms …). Beside the client's figures, they show
which part of the request the tail is in.

Every run also reports the CPU time the serving process used per answered request (from
/proc/<pid>/stat, its background threads included): a figure much less noisy than a tail
percentile on a shared machine, and the one that moves when the request path gets cheaper.

Every run also reports the machine's steal time: the share of a CPU's time the hypervisor gave
to other guests during the run (/proc/stat; the most of any CPU), time in which neither the gateway nor the direct path
could run — on this virtual machine, seen from 0 to 20 % in a second, it sets tails that no code
here does.

With --nginx a reference proxy runs as one more "gateway" each round: nginx (Debian's
nginx-light), one worker process, relaying to the same simulator over kept-alive connections, with
no governance at all. Its added latency is what any proxy hop costs on this machine — the floor
under the gateway's figure, measured in the same rounds.

With --pin the gateways run on CPU 1 and everything else on CPU 0 (taskset), as if the gateway had
a machine of its own beside its clients and provider.

Usage: bench/overhead.py [--bin target/release/tollgate] [--seconds 10] [--rounds 2] [--traces 0.1]
       [--against OTHER_BIN]
Requires: oha on PATH (cargo install oha).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps({
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You answer customer questions briefly."},
        {"role": "user", "content": "Where is my order 12345? It was due yesterday."},
    ],
    "max_tokens": 32,
})
# With --masking: a prompt carrying an e-mail address and a phone number, under a policy that
# tokenizes the one and masks the other on every request (and puts the token back in answers).
MASKING_BODY = json.dumps({
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You answer customer questions briefly."},
        {"role": "user", "content": "I am ann.lee@example.org, call me on +44 20 7946 0958: where is my order 12345?"},
    ],
    "max_tokens": 32,
})
MASKING_POLICY = {"entities": {"EMAIL_ADDRESS": "tokenize", "PHONE_NUMBER": "mask"}}
ADMIN = "tga_bench_admin_token_0123456789"


# With --pin: the CPUs the gateways run on, and those of everything else (this script, oha, the
# simulator), as taskset lists. `None`: no pinning.
PIN = None


def pinned(cmd, role):
    """`cmd` run on `role`'s CPUs ("gateway" or "harness") when --pin is given."""
    return ["taskset", "-c", PIN[role], *cmd] if PIN else cmd


def start(bin_path, args, env=None, wait=20, role="harness"):
    proc = subprocess.Popen(pinned([bin_path, *args], role), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, **(env or {})})
    got, ready = {}, threading.Event()

    def read():
        for line in proc.stdout:
            m = re.search(r"http://[0-9.:]+", line)
            if m and not ready.is_set():
                got["url"] = m.group(0)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(wait):
        proc.kill()
        sys.exit(f"{args[0]} did not start")
    return proc, got["url"]


def start_nginx(tmp, upstream):
    """nginx relaying to `upstream` on a free loopback port: one process (no master, one
    worker), upstream connections kept alive, no logs. Returns (process, base URL)."""
    import socket
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("nginx not found: apt-get install nginx-light")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = os.path.join(tmp, "nginx")
    os.makedirs(root, exist_ok=True)
    conf = os.path.join(root, "nginx.conf")
    host = upstream.split("://", 1)[1]
    with open(conf, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
pid {root}/nginx.pid; error_log {root}/error.log crit;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  upstream sim {{ server {host}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://sim; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
""")
    proc = subprocess.Popen(pinned([nginx, "-p", root, "-c", conf], "gateway"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"nginx exited ({proc.returncode}); see {root}/error.log")
            threading.Event().wait(0.05)
    proc.kill()
    sys.exit("nginx did not start")


def admin(base, path, body):
    req = urllib.request.Request(f"{base}/admin/v1{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


# Limits and budgets high enough never to bite, so their work (a tokenizer pass for the token
# reservation, the permit, the budget hold, settling both) runs on every request.
LIMITS = {"requests_per_minute": 100_000_000, "tokens_per_minute": 100_000_000_000, "concurrent_requests": 100_000}


def issue_key(base):
    """A production use case with rate limits and hard budgets, and a key with its own limits."""
    pod = admin(base, "/pods", {"name": "bench"})
    uc = admin(base, "/use-cases", {"pod_id": pod["id"], "name": "bench", "routes": ["gpt-4o-mini"], "limits": LIMITS})
    for stage in ("pilot", "production"):
        admin(base, f"/use-cases/{uc['id']}/stage", {"to": stage, "reason": "benchmark: the gate is not what is measured", "override": True})
    for scope, scope_id in (("use_case", uc["id"]), ("pod", pod["id"]), ("org", None)):
        body = {"scope": scope, "amount_usd": "1000000", "period": "month", "mode": "hard"}
        if scope_id:
            body["scope_id"] = scope_id
        admin(base, "/budgets", body)
    return admin(base, "/keys", {"use_case_id": uc["id"], "name": "bench", "limits": LIMITS})["secret"]


def cpu_seconds(proc):
    """User + system CPU time a process (all its threads) has used so far."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks():
    """Each CPU's time so far, from /proc/stat's `cpuN` lines: {N: (steal ticks, all ticks)}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in fields]
                # user nice system idle iowait irq softirq steal (guest time is inside user)
                out[name] = (ticks[7] if len(ticks) > 7 else 0, sum(ticks[:8]))
    return out


def steal_pct(before, after):
    """The largest share of one CPU's time stolen between two `cpu_ticks()` (a steal on one
    core, averaged with an idle other, would read as half of itself)."""
    return max(((after[c][0] - before[c][0]) / max(after[c][1] - before[c][1], 1) * 100
                for c in after if c in before), default=0.0)


def short_slices(proc, slice_us):
    """Asks the kernel (EEVDF, Linux 6.12+) for `slice_us` µs slices on the process's tokio
    worker threads (sched_setattr with sched_runtime, SCHED_OTHER, its nice kept): an
    experiment on how much of the tail is waiting for a turn on a core (--slice-us)."""
    import ctypes
    import platform
    if platform.machine() != "x86_64":
        sys.exit("--slice-us knows the system call numbers of x86_64 only")
    libc = ctypes.CDLL(None, use_errno=True)

    class Attr(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                    ("nice", ctypes.c_int32), ("prio", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                    ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]
    done = 0
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        with open(f"/proc/{proc.pid}/task/{task}/comm") as f:
            if not f.read().startswith("tokio-r"):
                continue
        nice = os.getpriority(os.PRIO_PROCESS, int(task))
        attr = Attr(48, 0, 0, nice, 0, slice_us * 1000, 0, 0)
        if libc.syscall(ctypes.c_long(314), ctypes.c_long(int(task)), ctypes.byref(attr),
                        ctypes.c_long(0)) != 0:  # SYS_sched_setattr
            sys.exit(f"sched_setattr failed: errno {ctypes.get_errno()}")
        # Read back: a kernel before 6.12 takes the call and ignores the slice.
        got = Attr()
        if (libc.syscall(ctypes.c_long(315), ctypes.c_long(int(task)), ctypes.byref(got),
                         ctypes.c_long(48), ctypes.c_long(0)) != 0 or got.runtime != slice_us * 1000):
            sys.exit("this kernel does not keep a custom slice (needs Linux 6.12+, EEVDF)")
        done += 1
    return done


def thread_cpu(proc):
    """CPU seconds per thread name (`comm`, digits dropped so a pool's threads add up), and the
    seconds each name's threads waited runnable for a CPU."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        try:
            with open(f"/proc/{proc.pid}/task/{task}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        name = "".join(c for c in head.split("(", 1)[1] if not c.isdigit()).rstrip("-_ ") or "?"
        fields = rest.split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
        # And its time runnable but waiting for a CPU.
        try:
            with open(f"/proc/{proc.pid}/task/{task}/schedstat") as f:
                wait = int(f.read().split()[1]) / 1e9
            out[f"{name} (run-queue wait)"] = out.get(f"{name} (run-queue wait)", 0) + wait
        except (OSError, IndexError, ValueError):
            pass
    return out


THREADS = False


def run_queue_wait(proc):
    """Seconds the process's threads have spent runnable but waiting for a CPU so far
    (/proc/<pid>/task/*/schedstat, second field)."""
    total = 0
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        try:
            with open(f"/proc/{proc.pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


# The simulator, whose run-queue wait is measured in every run (set in main).
SIM = None


def oha(url, seconds, rate=None, connections=32, key=None, proc=None):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
           "-m", "POST", "-H", "content-type: application/json", "-d", BODY]
    if key:
        cmd += ["-H", f"authorization: Bearer {key}"]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    cmd.append(url)
    cmd = pinned(cmd, "harness")
    before = cpu_seconds(proc) if proc else None
    wait_before = run_queue_wait(proc) if proc else None
    sim_wait_before = run_queue_wait(SIM) if SIM else None
    threads_before = thread_cpu(proc) if proc and THREADS else None
    ticks_before = cpu_ticks()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ticks_after = cpu_ticks()
    data = json.loads(out)
    answered = sum(data.get("statusCodeDistribution", {}).values())
    pct = data["latencyPercentiles"]
    summary = data["summary"]
    codes = data.get("statusCodeDistribution", {})
    return {
        "p50_ms": pct["p50"] * 1000,
        "p90_ms": pct["p90"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "p999_ms": pct["p99.9"] * 1000,
        "rps": summary["requestsPerSec"],
        "success": summary["successRate"],
        "non_200": sum(v for k, v in codes.items() if k != "200"),
        # CPU the serving process used per answered request during the run (its background work
        # included), in µs: less noisy than a tail percentile on a shared machine.
        "cpu_us": (cpu_seconds(proc) - before) / max(answered, 1) * 1e6 if proc else float("nan"),
        # The share of a CPU's time the hypervisor gave to others during the run (steal; the
        # most of any CPU): on a virtual machine, time no process here could run in.
        "steal_pct": steal_pct(ticks_before, ticks_after),
        # Time the serving process's threads, and the simulator's, spent runnable but waiting for
        # a CPU, per answered request (µs): how crowded the machine was for them.
        "wait_us": (run_queue_wait(proc) - wait_before) / max(answered, 1) * 1e6 if proc else float("nan"),
        "sim_wait_us": (run_queue_wait(SIM) - sim_wait_before) / max(answered, 1) * 1e6 if SIM else float("nan"),
        "raw": data,
        # Per thread name, µs per answered request (--threads).
        "threads": {k: (v - threads_before.get(k, 0)) / max(answered, 1) * 1e6
                    for k, v in thread_cpu(proc).items()} if threads_before is not None else None,
    }


HISTOGRAMS = {
    # The gateway's own view of each request: the time it adds (total minus waiting on the
    # upstream), and the upstream call as it sees it (the simulator's hop, with the gateway's
    # scheduling of the answer included).
    "overhead": 'tollgate_gateway_overhead_seconds_bucket{le="%s",endpoint="chat",stream="false"}',
    "upstream": 'tollgate_upstream_duration_seconds_bucket{le="%s",provider="sim",outcome="ok"}',
}


def buckets(base):
    """The cumulative bucket counts of HISTOGRAMS, scraped from the gateway's /metrics."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    out = {}
    for name, pattern in HISTOGRAMS.items():
        rx = re.escape(pattern).replace(re.escape("%s"), r"([0-9.e+-]+|\+Inf)") + r" (\d+)"
        out[name] = [(float(le), int(n)) for le, n in re.findall(rx, text)]
    return out


def own(g):
    """The gateway's own p99 bounds of a run, as a table cell."""
    b = g.get("own_p99_ms") or {}
    cell = lambda v: f"≤ {v:.2f}" if v is not None else "n/a"
    return f"{cell(b.get('overhead'))} / {cell(b.get('upstream'))} ms"


def p99_bound(before, after):
    """The upper bound (ms) of the bucket holding the 99th percentile of what was observed
    between two scrapes, per histogram; None when nothing was."""
    out = {}
    for name in HISTOGRAMS:
        deltas = [(le, n - dict(before[name]).get(le, 0)) for le, n in after[name]]
        total = max((n for _, n in deltas), default=0)
        out[name] = next((le * 1000 for le, n in deltas if total and n >= 0.99 * total), None)
    return out


class OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and counts them (requests, bytes)."""
    exports = 0
    bytes = 0

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        OtlpSink.exports += 1
        OtlpSink.bytes += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("TOLLGATE_BIN", "target/release/tollgate"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rates", default="500,2000")
    ap.add_argument("--masking", action="store_true",
                    help="a prompt with an e-mail and a phone number under a tokenize/mask policy")
    ap.add_argument("--no-max", action="store_true", help="skip the maximum-throughput runs")
    ap.add_argument("--policy", help="the org default policy to set, as JSON (overrides --masking's)")
    ap.add_argument("--traces", type=float, metavar="RATIO",
                    help="trace with this sample_ratio, exporting to a sink in this script")
    ap.add_argument("--against", metavar="BIN",
                    help="a second build, run as one more gateway beside the first each round (A/B)")
    ap.add_argument("--against-env", metavar="NAME=VALUE", action="append", default=[],
                    help="an environment variable for the --against gateway only (repeatable), e.g. "
                         "TOKIO_WORKER_THREADS=1: the same build under another runtime setting")
    ap.add_argument("--against-server", action="append", default=[], metavar="KEY=VALUE",
                    help="a `server:` setting for the --against gateway only (repeatable), e.g. "
                         "request_threads=shared: the same build under another setting")
    ap.add_argument("--against-nice", type=int, metavar="N",
                    help="an experiment: the --against gateway's SQLite threads at nice N after the warm-up")
    ap.add_argument("--threads", action="store_true",
                    help="print each run's CPU per request per thread name of the serving process")
    ap.add_argument("--max-steal", type=float, metavar="PCT",
                    help="set aside (and run again) a round in which any run's steal time was "
                         "above PCT %% of the machine's CPU time; at most 4x --rounds tries")
    ap.add_argument("--slice-us", type=int, metavar="US",
                    help="experiment: the first gateway's tokio threads ask for US µs slices "
                         "(sched_setattr; compare with --against the same binary)")
    ap.add_argument("--nginx", action="store_true",
                    help="also drive a plain nginx reverse proxy to the simulator each round: "
                         "what a proxy hop with no governance adds on this machine")
    ap.add_argument("--pin", action="store_true",
                    help="run the gateways on CPU 1 and everything else (this script, oha, the "
                         "simulator) on CPU 0, as if the gateway had a machine of its own")
    args = ap.parse_args()
    if args.pin:
        global PIN
        PIN = {"gateway": "1", "harness": "0"}
        os.sched_setaffinity(0, {0})
    global THREADS
    THREADS = args.threads
    if args.masking:
        global BODY
        BODY = MASKING_BODY
    if not shutil.which("oha"):
        sys.exit("oha not found: cargo install oha")

    global SIM
    sim, sim_url = start(args.bin, ["simulate", "--listen", "127.0.0.1:0"])
    SIM = sim
    tmp = tempfile.mkdtemp()
    base = f"""
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1" }}
routes:
  - name: gpt-4o-mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
"""
    configs = [("gateway", args.bin, base, {})]
    if args.traces is not None:
        sink = ThreadingHTTPServer(("127.0.0.1", 0), OtlpSink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        configs.append(("traced", args.bin, base + f"""
telemetry:
  traces: {{ endpoint: "http://127.0.0.1:{sink.server_address[1]}", sample_ratio: {args.traces} }}
""", {}))
    if args.against:
        configs.append(("against", args.against, base,
                        dict(kv.split("=", 1) for kv in args.against_env)))
    # `server:` settings of the --against gateway only (the same build under another setting).
    against_server = "".join(f", {k}: {v}" for k, v in (kv.split("=", 1) for kv in args.against_server))
    gws = []  # (name, process, url, key)
    procs = [sim]
    # Every process started is stopped by its pid, also when the setup fails.
    try:
        for name, bin_path, text, extra_env in configs:
            cfg = os.path.join(tmp, f"{name}.yaml")
            with open(cfg, "w") as f:
                extra = against_server if name == "against" else ""
                f.write(f'server: {{ listen: "127.0.0.1:0", data_dir: "{tmp}/{name}"{extra} }}\n' + text)
            gw, gw_url = start(bin_path, ["serve", "--config", cfg, "--log-format", "json"],
                               env={"RUST_LOG": "warn", "TOLLGATE_ADMIN_TOKEN": ADMIN, **extra_env},
                               role="gateway")
            procs.append(gw)
            if args.slice_us and name == "gateway":
                print(f"{name}: {short_slices(gw, args.slice_us)} threads at {args.slice_us} µs slices", flush=True)
            key = issue_key(gw_url)
            if args.masking or args.policy:
                policy = json.loads(args.policy) if args.policy else MASKING_POLICY
                req = urllib.request.Request(f"{gw_url}/admin/v1/policies/default", method="PUT",
                                             data=json.dumps({"policy": policy}).encode(),
                                             headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
                urllib.request.urlopen(req, timeout=10).read()
            gws.append((name, gw, gw_url, key))
        if args.nginx:
            proxy, proxy_url = start_nginx(tmp, sim_url)
            procs.append(proxy)
            gws.append(("nginx", proxy, proxy_url, None))
        direct = f"{sim_url}/v1/chat/completions"
        results = {"fixed": [], "max": [], "discarded": [], "short": []}
        # Warm up all (connection pools, page cache).
        oha(direct, 2, rate=500)
        for _, _, url, key in gws:
            oha(f"{url}/v1/chat/completions", 2, rate=500, key=key)
        if args.against_nice is not None:
            for name, gw, _, _ in gws:
                if name == "against":
                    tids = [t for t in os.listdir(f"/proc/{gw.pid}/task")
                            if open(f"/proc/{gw.pid}/task/{t}/comm").read().startswith("sqlx-sqlite")]
                    for t in tids:
                        os.setpriority(os.PRIO_PROCESS, int(t), args.against_nice)
                    print(f"against: {len(tids)} SQLite threads at nice {args.against_nice}", flush=True)
        for rate in [int(r) for r in args.rates.split(",")]:
            rnd, tries = 0, 0
            while rnd < args.rounds:
                tries += 1
                if tries > args.rounds * 4:
                    # What was measured is still written; the header says the rate fell short.
                    results["short"].append(rate)
                    print(f"only {rnd} of {args.rounds} rounds at {rate} req/s had steal under "
                          f"{args.max_steal} % in {tries - 1} tries: the machine is too busy", flush=True)
                    break
                row = {"rate": rate, "round": rnd + 1, "try": tries,
                       "direct": oha(direct, args.seconds, rate=rate, proc=sim)}
                # The gateways take turns going first: the one driven second in a round measures
                # worse on this machine (about 5 % more CPU per request and a longer tail, seen
                # with the same binary in both places), so each is driven first as often as the
                # other.
                for name, gw, url, key in gws[rnd % len(gws):] + gws[:rnd % len(gws)]:
                    before = buckets(url) if name != "nginx" else None
                    row[name] = oha(f"{url}/v1/chat/completions", args.seconds, rate=rate, key=key, proc=gw)
                    row[name]["own_p99_ms"] = p99_bound(before, buckets(url)) if before else {}
                stolen = max(row[n]["steal_pct"] for n in ["direct"] + [n for n, *_ in gws])
                if args.max_steal is not None and stolen > args.max_steal:
                    # The hypervisor took the machine away during this round: its percentiles
                    # say more about the other guests than about the gateway. Kept aside, run again.
                    results["discarded"].append(row)
                    print(f"rate {rate} round {rnd + 1} (try {tries}): set aside, steal {stolen:.1f} % "
                          f"(above --max-steal {args.max_steal} %)", flush=True)
                    continue
                rnd += 1
                results["fixed"].append(row)
                d, g = row["direct"], row["gateway"]
                print(f"rate {rate} round {row['round']}: direct p50 {d['p50_ms']:.3f} p99 {d['p99_ms']:.3f} | "
                      f"gateway p50 {g['p50_ms']:.3f} p99 {g['p99_ms']:.3f} ms"
                      + "".join(f" | {n} p50 {row[n]['p50_ms']:.3f} p99 {row[n]['p99_ms']:.3f} ms"
                                for n, *_ in gws[1:])
                      + " | CPU/request " + " ".join(f"{n} {row[n]['cpu_us']:.0f} µs" for n in ["direct"] + [n for n, *_ in gws])
                      + f" (non-200: {d['non_200']}/{g['non_200']})"
                      + " | steal " + " ".join(f"{n} {row[n]['steal_pct']:.1f} %" for n in ["direct"] + [n for n, *_ in gws])
                      + " | own p99 " + " ".join(f"{n} {own(row[n])}" for n, *_ in gws)
                      + " | run-queue wait/request (own, simulator) "
                      + " ".join(f"{n} {row[n]['wait_us']:.0f}, {row[n]['sim_wait_us']:.0f} µs"
                                 for n in ["direct"] + [n for n, *_ in gws]), flush=True)
                if THREADS:
                    for n, *_ in gws:
                        t = sorted(row[n]["threads"].items(), key=lambda kv: -kv[1])
                        print(f"  {n} threads (µs/request): "
                              + ", ".join(f"{k} {v:.1f}" for k, v in t if v >= 0.05), flush=True)
        for rnd in range(0 if args.no_max else args.rounds):
            d = oha(direct, args.seconds)
            _, _, url, key = gws[0]
            g = oha(f"{url}/v1/chat/completions", args.seconds, key=key)
            results["max"].append({"round": rnd + 1, "direct": d, "gateway": g})
            print(f"max round {rnd + 1}: direct {d['rps']:.0f} req/s p50 {d['p50_ms']:.3f} | "
                  f"gateway {g['rps']:.0f} req/s p50 {g['p50_ms']:.3f} ms", flush=True)
        if args.traces is not None:
            metrics = urllib.request.urlopen(f"{gws[1][2]}/metrics", timeout=10).read().decode()
            spans = re.findall(r'^tollgate_trace_spans_total\{outcome="(\w+)"\} (\d+)', metrics, re.M)
            print(f"traces: {dict(spans)} spans; sink received {OtlpSink.exports} exports, "
                  f"{OtlpSink.bytes} bytes", flush=True)
            results["traces"] = {"ratio": args.traces, "spans": dict(spans),
                                 "exports": OtlpSink.exports, "bytes": OtlpSink.bytes}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{args.seconds} s per run, {args.rounds} rounds, oha -c 32, open loop with --latency-correction"
        + (", masking policy (tokenize e-mail, mask phone) on every request" if args.masking else "")
        + (f"; rounds with steal above {args.max_steal} % in any run set aside and run again "
           f"({len(results['discarded'])} set aside"
           + (f"; too few rounds kept at {results['short']} req/s" if results["short"] else "")
           + "; the maximum-throughput runs are not checked)" if args.max_steal is not None else "")
        + ("; pinned (--pin): the gateways on CPU 1, this script, oha and the simulator on CPU 0"
           if args.pin else "")
        + (f"; `gateway` is {args.bin}, `against` is {args.against}" if args.against else "")
        + (f" with {' '.join(args.against_env)}" if args.against_env else "")
        + (f"; a second gateway traces at sample_ratio {args.traces} (OTLP/HTTP to a local sink: "
           f"{results['traces']['spans']} spans in {OtlpSink.exports} exports), driven in the same rounds, "
           f"the two gateways taking turns going first" if args.traces is not None else "")
        + ".",
        "",
        "| rate (req/s) | round | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | non-200 (d/g) | CPU per request (d/g) | gateway's own p99: overhead / upstream | steal (d/g) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # The rounds set aside (--max-steal) are listed too, after the kept ones, and not in the medians.
    for r, aside in [(r, False) for r in results["fixed"]] + [(r, True) for r in results["discarded"]]:
        d = r["direct"]
        for name in [n for n, *_ in gws]:
            g = r[name]
            label = (f"{r['round']}{' (try ' + str(r.get('try')) + ', set aside)' if aside else ''}"
                     f" {'' if name == 'gateway' else '(' + name + ')'}")
            lines.append(f"| {r['rate']} | {label} | "
                         f"{d['p50_ms']:.3f} ms | {d['p99_ms']:.3f} ms | "
                         f"{g['p50_ms']:.3f} ms | {g['p99_ms']:.3f} ms | {g['p50_ms'] - d['p50_ms']:+.3f} ms | "
                         f"{g['p99_ms'] - d['p99_ms']:+.3f} ms | {d['non_200']}/{g['non_200']} | "
                         f"{d['cpu_us']:.0f} / {g['cpu_us']:.0f} µs | {own(g)} | "
                         f"{d.get('steal_pct', float('nan')):.1f} / {g.get('steal_pct', float('nan')):.1f} % |")
    for rate in sorted({r["rate"] for r in results["fixed"]}):
        rows = [r for r in results["fixed"] if r["rate"] == rate]
        for name in [n for n, *_ in gws]:
            med = statistics.median(r[name]["p99_ms"] - r["direct"]["p99_ms"] for r in rows)
            med50 = statistics.median(r[name]["p50_ms"] - r["direct"]["p50_ms"] for r in rows)
            cpu = statistics.median(r[name]["cpu_us"] for r in rows)
            lines.append(f"| **{rate}** | median{'' if name == 'gateway' else ' (' + name + ')'} | | | | | "
                         f"**{med50:+.3f} ms** | **{med:+.3f} ms** | | **{cpu:.0f} µs** | | |")
    lines += ["", "| max throughput | round | direct req/s | gateway req/s | ratio | direct p50 | gateway p50 |",
              "|---|---|---|---|---|---|---|"]
    for r in results["max"]:
        d, g = r["direct"], r["gateway"]
        lines.append(f"| c=32 | {r['round']} | {d['rps']:.0f} | {g['rps']:.0f} | {g['rps'] / d['rps']:.2f} | "
                     f"{d['p50_ms']:.3f} ms | {g['p50_ms']:.3f} ms |")
    table = "\n".join(lines)
    print("\n" + table)
    os.makedirs("bench/results", exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M")
    with open(f"bench/results/overhead-{stamp}.md", "w") as f:
        f.write(table + "\n")
    with open(f"bench/results/overhead-{stamp}.json", "w") as f:
        json.dump({k: ([{kk: ({x: y for x, y in vv.items() if x != "raw"} if isinstance(vv, dict) else vv)
                         for kk, vv in row.items()} for row in v] if isinstance(v, list) else v)
                   for k, v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
