//! Tier 4: the built `tollgate` binary, run as a user would, on port 0.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tollgate args…` and waits for the stdout line with its URL.
fn start(args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::null());
    spawn_until_url(cmd)
}

/// Starts `tollgate serve --config cfg --listen 127.0.0.1:0 extra…` with `env` (and no admin token
/// but one `env` gives) and its log written to `log`; waits for its URL.
fn serve_logging_to(
    cfg: &std::path::Path,
    log: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(extra)
    .env_remove("TOLLGATE_ADMIN_TOKEN")
    .envs(env.iter().copied())
    .stderr(std::fs::File::create(log).unwrap());
    spawn_until_url(cmd)
}

/// Spawns `cmd` with its stdout piped and waits for the line with its URL.
fn spawn_until_url(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                let _ = tx.send(line[i..].trim_end_matches("/v1").to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the process printed no URL");
    (Proc(child), url)
}

fn terminate(p: &mut Proc) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap();
    // Waited on, not polled. A watchdog kills a server still running 30 s later (far above a
    // clean exit's time), so a hung server fails the test as "signal: 9" instead of hanging it.
    let pid = p.0.id().to_string();
    let (exited, watched) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watched.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let status = p.0.wait().unwrap();
    let _ = exited.send(());
    watchdog.join().unwrap();
    status
}

/// Through the admin API: a pod, a use case moved to production, and a key for it.
async fn issue_key(client: &reqwest::Client, url: &str, admin: &str, routes: &[&str]) -> String {
    let post = |path: &str, body: Value| {
        client
            .post(format!("{url}/admin/v1{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    let pod: Value = post("/pods", json!({"name": "bb"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uc: Value = post(
        "/use-cases",
        json!({"pod_id": pod["id"], "name": "bb-uc", "routes": routes}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = uc["id"].as_str().unwrap().to_string();
    for to in ["pilot", "production"] {
        let r = post(
            &format!("/use-cases/{id}/stage"),
            json!({"to": to, "reason": "black-box test", "override": true}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    let key: Value = post("/keys", json!({"use_case_id": id, "name": "bb"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    key["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn serve_and_simulate_as_binaries() {
    let (_sim, sim_url) = start(
        &[
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "sim-secret",
        ],
        &[],
    );
    let dir = std::env::temp_dir().join(format!("tollgate-bb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("tollgate.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  listen: 127.0.0.1:4000\n  data_dir: {}\nproviders:\n  - name: sim\n    type: openai_compatible\n    base_url: {sim_url}/v1\n    api_key: ${{SIM_API_KEY}}\nroutes:\n  - name: gpt-4o-mini\n    deployments:\n      - {{ provider: sim, model: gpt-4o-mini, weight: 1 }}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let (mut gw, url) = start(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("SIM_API_KEY", "sim-secret"),
            (
                "TOLLGATE_ADMIN_TOKEN",
                "tga_blackbox_admin_token_0123456789",
            ),
        ],
    );
    let client = reqwest::Client::new();
    let key = issue_key(
        &client,
        &url,
        "tga_blackbox_admin_token_0123456789",
        &["gpt-4o-mini"],
    )
    .await;
    let resp = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    let unauth = client.get(format!("{url}/v1/models")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    assert!(dir.join("data").is_dir(), "data_dir is created at start");
    let status = terminate(&mut gw);
    assert!(status.success(), "graceful exit: {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_check_validates_and_redacts() {
    let dir = std::env::temp_dir().join(format!("tollgate-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, "providers:\n  - { name: oa, type: openai, api_key: sk-very-secret }\nroutes:\n  - { name: r, deployments: [{ provider: oa, model: gpt-4o }] }\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", good.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("oa") && stdout.contains("***") && !stdout.contains("sk-very-secret"),
        "{stdout}"
    );

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "routes:\n  - name: r\n    deployments: [{ provider: oa, model: m, wieght: 1 }]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("routes[0].deployments[0]") && stderr.contains("wieght"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args(["serve", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wieght"));

    // A reader that has gone (`| head -3`): the command ends quietly, status 0, no panic. The
    // pipe's read end is closed before the command starts, so its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["config", "check", good.to_str().unwrap()])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A guessable bootstrap token is refused at start, with what to do instead.
#[test]
fn serve_refuses_a_short_admin_token() {
    let dir = std::env::temp_dir().join(format!("tollgate-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("t.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{ data_dir: {} }}\nproviders:\n  - {{ name: s, type: openai_compatible, base_url: \"http://127.0.0.1:9/v1\" }}\nroutes:\n  - {{ name: r, deployments: [{{ provider: s, model: m }}] }}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    // One character, and 23 (one short of the minimum).
    for token in ["x", "tga_23_characters_long_"] {
        assert!(token.len() == 1 || token.len() == 23);
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--config",
                cfg.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("TOLLGATE_ADMIN_TOKEN", token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that accepted the token would serve until stopped: it announces itself
        // ("listening") instead of exiting, and is stopped here.
        let stdout = read_until_exit_or(&mut child, "listening");
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let stderr = format!("{stdout}{stderr}");
        assert!(!status.success(), "{token:?} was accepted: {stderr}");
        assert!(
            stderr.contains("TOLLGATE_ADMIN_TOKEN must be at least 24 characters"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_rejects_bad_knobs() {
    let out = Command::new(BIN)
        .args(["simulate", "--listen", "127.0.0.1:0", "--error-rate", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--error-rate must be between 0 and 1"));
    for knob in ["--truncate-rate", "--stream-error-rate"] {
        let out = Command::new(BIN)
            .args(["simulate", "--listen", "127.0.0.1:0", knob, "1.5"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{knob} must be between 0 and 1, got 1.5")),
            "{err}"
        );
    }
}

/// A SIGTERM sent as soon as a server has printed the line that says where it listens stops it
/// cleanly (exit 0): the handler is installed before that line. (It was installed later, when the
/// serve loop first ran, and a CI run's early SIGTERM killed the server with the default action.)
#[test]
fn a_signal_right_after_the_listening_line_stops_cleanly() {
    let dir = fresh_dir("bb-early-term");
    let cfg = unreachable_upstream_config(&dir);
    let log = dir.join("stderr.log");
    for round in 0..3 {
        let (mut gw, _) = serve_logging_to(
            &cfg,
            &log,
            &[],
            &[(
                "TOLLGATE_ADMIN_TOKEN",
                "tga_early_signal_test_token_0123456789",
            )],
        );
        let status = terminate(&mut gw);
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            status.success(),
            "serve, round {round}: {status}; the log:\n{logged}"
        );
        let (mut sim, _) = start(&["simulate", "--listen", "127.0.0.1:0"], &[]);
        let status = terminate(&mut sim);
        assert!(status.success(), "simulate, round {round}: {status}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_sends_sample_traffic_and_stops() {
    let dir = std::env::temp_dir().join(format!("tollgate-demo-{}", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "demo",
            "--no-wait",
            "--requests",
            "8",
            "--data-dir",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("curl -s http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("from openai import OpenAI"), "{stdout}");
    let ok: Vec<&str> = stdout.lines().filter(|l| l.contains(" 200 ")).collect();
    assert_eq!(
        ok.len(),
        6,
        "every request of a live use case succeeds:\n{stdout}"
    );
    assert!(
        stdout.contains("use_case_not_live") && stdout.contains("use_case_retired"),
        "{stdout}"
    );
    assert!(
        stdout.contains("chat-resilient") && stdout.contains("Stopped."),
        "{stdout}"
    );
    assert!(dir.join("demo.yaml").is_file());
    // The demo's use cases have eval budgets, and a sample suite to run is written and named.
    assert!(stdout.contains("tollgate eval run"), "{stdout}");
    let suite = std::fs::read_to_string(dir.join("demo-suite.yaml")).unwrap();
    assert!(
        suite.contains("prompts:") && suite.contains("tests:"),
        "{suite}"
    );
    let check = Command::new(BIN)
        .args([
            "eval",
            "check",
            dir.join("demo-suite.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A simulator (with `sim_args`) and a gateway serving route `chat` to its `model`, with `admin`
/// as the bootstrap token and its data in a fresh directory; both stop when dropped.
struct Stack {
    _sim: Proc,
    _gw: Proc,
    url: String,
    dir: PathBuf,
}

/// An empty directory of this process for test `tag` (emptied if a previous run left it).
fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config with `dir/data` as its data directory and one route to an upstream nobody listens
/// on (port 9): for tests of the server itself, not of its traffic. Its path.
fn unreachable_upstream_config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        &format!(
            "server:\n  data_dir: {}\nproviders:\n  - name: sim\n    type: openai_compatible\n    base_url: http://127.0.0.1:9/v1\nroutes:\n  - name: r\n    deployments:\n      - {{ provider: sim, model: gpt-4o-mini }}\n",
            dir.join("data").display()
        ),
    )
}

/// Writes `yaml` as `dir/tollgate.yaml`; its path.
fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let cfg = dir.join("tollgate.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    cfg
}

fn stack(tag: &str, sim_args: &[&str], model: &str, admin: &str) -> Stack {
    let mut args = vec!["simulate", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(sim_args);
    let (sim, sim_url) = start(&args, &[]);
    let dir = fresh_dir(tag);
    let cfg = write_config(
        &dir,
        &format!(
            "server: {{ data_dir: \"{}\" }}\nproviders: [{{ name: sim, type: openai_compatible, base_url: \"{sim_url}/v1\" }}]\nroutes: [{{ name: chat, deployments: [{{ provider: sim, model: {model} }}] }}]\n",
            dir.join("data").display()
        ),
    );
    let (gw, url) = start(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("TOLLGATE_ADMIN_TOKEN", admin)],
    );
    Stack {
        _sim: sim,
        _gw: gw,
        url,
        dir,
    }
}

/// Runs `tollgate <args> --url URL` with `TOLLGATE_TOKEN`, returning stdout; panics on failure.
fn cli(url: &str, token: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .args(["--url", url])
        .env("TOLLGATE_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cli_json(url: &str, token: &str, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&cli(url, token, &a)).unwrap()
}

#[tokio::test]
async fn the_cli_drives_the_admin_api() {
    let st = stack("cli", &[], "m", "tga_cli_admin_token_0123456789");
    let (url, dir, admin) = (
        st.url.clone(),
        st.dir.clone(),
        "tga_cli_admin_token_0123456789",
    );

    let pod = cli_json(
        &url,
        admin,
        &["pods", "create", "support", "--description", "Front line"],
    );
    let pod_id = pod["id"].as_str().unwrap();
    let table = cli(&url, admin, &["pods", "list"]);
    assert!(
        table.starts_with("ID") && table.contains("support") && table.contains("Front line"),
        "{table}"
    );
    let user = cli_json(
        &url,
        admin,
        &[
            "users",
            "create",
            "--email",
            "lee@example.com",
            "--name",
            "Lee",
        ],
    );
    let user_id = user["id"].as_str().unwrap();
    cli(
        &url,
        admin,
        &["pods", "add-member", pod_id, user_id, "--role", "lead"],
    );
    let token = cli_json(&url, admin, &["users", "token", user_id])["secret"]
        .as_str()
        .unwrap()
        .to_string();

    // The pod lead, with a personal token, runs the use case's lifecycle.
    let uc = cli_json(
        &url,
        &token,
        &[
            "usecases", "create", "--pod", pod_id, "--name", "triage", "--routes", "chat",
        ],
    );
    let uc_id = uc["id"].as_str().unwrap();
    // This organization's gates ask for nothing (a platform admin's choice, through the CLI);
    // the gates have their own walk below.
    let gates = dir.join("gates.yaml");
    std::fs::write(
        &gates,
        "pilot: { checks: [], approvals: [] }\nproduction: { checks: [], approvals: [] }\n",
    )
    .unwrap();
    cli(&url, admin, &["gates", "set", gates.to_str().unwrap()]);
    let got = cli(&url, &token, &["gates", "get"]);
    assert!(
        got.contains("checks: []") && !got.contains("risk_officer"),
        "{got}"
    );
    let (code, _, err) = cli_status(&url, &token, &["gates", "set", gates.to_str().unwrap()]);
    assert_eq!(code, 1, "a lead may not change the gates");
    assert!(err.contains("403"), "{err}");
    // A number YAML has and JSON has not is named by its path, before anything is sent.
    let nan = dir.join("gates-nan.yaml");
    std::fs::write(&nan, "production: { max_regression: .nan }\n").unwrap();
    let (code, _, err) = cli_status(&url, admin, &["gates", "set", nan.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`production.max_regression` is not a finite number"),
        "{err}"
    );
    // So are a tag, a key that is not a string, and an empty file.
    for (text, want) in [
        (
            "production: { max_regression: !custom 0.1 }\n",
            "`production.max_regression` has a YAML tag",
        ),
        (
            "pilot: { 1: 2 }\n",
            "`pilot.1` is a key that is not a string",
        ),
        ("# nothing\n", "is empty"),
    ] {
        std::fs::write(&nan, text).unwrap();
        let (code, _, err) = cli_status(&url, admin, &["gates", "set", nan.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "{text}: {err}");
    }
    for to in ["pilot", "production"] {
        cli(
            &url,
            &token,
            &[
                "usecases", "stage", uc_id, "--to", to, "--reason", "cli test",
            ],
        );
    }
    let history = cli(&url, &token, &["usecases", "history", uc_id]);
    assert_eq!(
        history.lines().filter(|l| l.contains("cli test")).count(),
        2,
        "{history}"
    );
    let key = cli_json(
        &url,
        &token,
        &["keys", "create", "--use-case", uc_id, "--name", "app"],
    );
    let secret = key["secret"].as_str().unwrap();
    let client = reqwest::Client::new();
    let chat = |k: String| {
        client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(k)
            .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    // The binary reads the system clock: the request is recorded in the month it was received,
    // which is one of the months before and after it (they differ only at a month's end).
    let before = tollgate_store::now_ms();
    assert_eq!(chat(secret.to_string()).await.unwrap().status(), 200);
    let after = tollgate_store::now_ms();
    let mut months = vec![tollgate_types::time::rfc3339(before)[..7].to_string()];
    months.push(tollgate_types::time::rfc3339(after)[..7].to_string());
    months.dedup();

    // The month in FOCUS columns, written to a file. Asked at once: a report includes the
    // requests answered before it (the ledger writes its batch first).
    let focus = dir.join("focus.csv");
    let mut rows = 0;
    let mut text = String::new();
    for month in &months {
        cli(
            &url,
            admin,
            &[
                "report",
                "focus",
                "--month",
                month,
                "--out",
                focus.to_str().unwrap(),
            ],
        );
        text = std::fs::read_to_string(&focus).unwrap();
        assert!(text.starts_with("BilledCost,BillingAccountId,"), "{text}");
        rows += text.lines().count() - 1;
    }
    assert!(rows > 0, "a row for the request: {text}");
    let bad = Command::new(BIN)
        .args(["report", "focus", "--month", "2026-13", "--url", &url])
        .env("TOLLGATE_TOKEN", admin)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`month` must look like 2026-11"));
    let advice = cli(&url, admin, &["report", "advice"]);
    assert!(advice.contains("Identical requests"), "{advice}");
    // The KPIs of the portfolio: a table, Markdown with definitions, and JSON with all 25.
    let table = cli(&url, admin, &["report", "kpis", "--window", "week"]);
    assert!(table.starts_with("KPIs of the portfolio"), "{table}");
    assert!(table.contains("cost per successful outcome"), "{table}");
    assert!(table.contains("n/a: no evaluation runs yet"), "{table}");
    let md = cli(&url, admin, &["report", "kpis", "--markdown"]);
    assert!(
        md.contains("| # | KPI | group | value | events | how |"),
        "{md}"
    );
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        26,
        "{md}"
    );
    let json = cli(&url, admin, &["report", "kpis", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kpis"].as_array().unwrap().len(), 25);
    // The portfolio: a table, and the chart as an SVG file.
    let table = cli(&url, admin, &["report", "portfolio"]);
    assert!(
        table.contains("QUADRANT") && table.contains("quick_win"),
        "{table}"
    );
    let chart = dir.join("portfolio.svg");
    cli(
        &url,
        admin,
        &["report", "portfolio", "--svg", chart.to_str().unwrap()],
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<circle class=\"use-case\""),
        "{svg}"
    );
    let bad = Command::new(BIN)
        .args(["report", "kpis", "--window", "year", "--url", &url])
        .env("TOLLGATE_TOKEN", admin)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`window` must be day, week or month"));

    let keys = cli(&url, &token, &["keys", "list"]);
    assert!(
        keys.contains(key["key"]["prefix"].as_str().unwrap()) && !keys.contains(secret),
        "{keys}"
    );
    cli(
        &url,
        &token,
        &["keys", "revoke", key["key"]["id"].as_str().unwrap()],
    );
    assert_eq!(chat(secret.to_string()).await.unwrap().status(), 401);

    // Policies: YAML in, YAML out, and the export is taken back as it is.
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "entities:\n  EMAIL_ADDRESS: tokenize\n  PHONE_NUMBER: { action: hash, threshold: 0.7 }\nguard: { denied_terms: [Project Falcon] }\n",
    )
    .unwrap();
    let set = cli(
        &url,
        admin,
        &[
            "policies",
            "set",
            policy.to_str().unwrap(),
            "--use-case",
            uc_id,
            "--note",
            "from the CLI",
        ],
    );
    assert!(set.contains("use_case"), "{set}");
    let exported = cli(&url, admin, &["policies", "get", "--use-case", uc_id]);
    assert!(exported.starts_with("# use_case policy of"), "{exported}");
    assert!(
        exported.contains("EMAIL_ADDRESS: tokenize") && exported.contains("Project Falcon"),
        "{exported}"
    );
    let again = dir.join("again.yaml");
    std::fs::write(&again, &exported).unwrap();
    cli(
        &url,
        admin,
        &[
            "policies",
            "set",
            again.to_str().unwrap(),
            "--use-case",
            uc_id,
        ],
    );
    let body = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        body(&cli(&url, admin, &["policies", "get", "--use-case", uc_id])),
        body(&exported),
        "an exported policy stores the same document"
    );
    let versions = cli(&url, admin, &["policies", "versions", "--use-case", uc_id]);
    assert!(
        versions.contains("from the CLI") && versions.lines().count() == 3,
        "{versions}"
    );
    // A pod member may read it but not change it.
    assert!(cli(&url, &token, &["policies", "get", "--use-case", uc_id]).contains("tokenize"));
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "entities:\n  EMAIL: mask\n").unwrap();
    for (who, file, says) in [
        (admin, &bad, "entities.EMAIL: unknown entity type"),
        (token.as_str(), &policy, "403"),
    ] {
        let out = Command::new(BIN)
            .args([
                "policies",
                "set",
                file.to_str().unwrap(),
                "--use-case",
                uc_id,
                "--url",
                &url,
            ])
            .env("TOLLGATE_TOKEN", who)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }

    // A clear error for a missing object, exit status 1.
    let out = Command::new(BIN)
        .args(["pods", "get", "pod_nope", "--url", &url])
        .env("TOLLGATE_TOKEN", admin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without `TOLLGATE_ADMIN_TOKEN`, the generated admin token goes to `<data_dir>/admin-token`
/// (0600) and never into the log stream (stderr here is a file, not a terminal).
#[tokio::test]
async fn a_generated_admin_token_is_written_to_a_private_file_not_the_log() {
    let dir = fresh_dir("bb-token");
    let cfg = unreachable_upstream_config(&dir);
    let log = dir.join("stderr.log");
    let (mut p, url) = serve_logging_to(&cfg, &log, &[], &[]);
    let file = dir.join("data").join("admin-token");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.starts_with("tga_"), "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let me = reqwest::Client::new()
        .get(format!("{url}/admin/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let status = terminate(&mut p);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; the log:\n{logged}");
    assert!(
        !logged.contains(&token),
        "the token is in the log:\n{logged}"
    );
    assert!(
        logged.contains("admin-token"),
        "the log says where the token is:\n{logged}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads `child`'s stdout until it ends (the process exited) or a line contains `marker` (the
/// process is up and would not exit by itself: it is killed). Everything read.
fn read_until_exit_or(child: &mut std::process::Child, marker: &str) -> String {
    use std::io::BufRead;
    let mut out = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        out.push_str(&line);
        out.push('\n');
        if line.contains(marker) {
            let _ = child.kill();
            break;
        }
    }
    out
}

/// Runs `tollgate args…` with `stdin`: (exit code, stdout, stderr).
fn run_with_stdin(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn guard_scan_reads_json_lines_from_stdin_and_never_prints_values() {
    let (code, out, err) = run_with_stdin(
        &["guard", "scan", "--jsonl"],
        b"{\"id\": \"t1\", \"text\": \"card 4111 1111 1111 1111, mail ann@example.org\"}\n",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["id"], "t1");
    let types: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CREDIT_CARD", "EMAIL_ADDRESS"]);
    assert_eq!(v["findings"][0]["start"], 5);
    assert!(!out.contains("4111") && !out.contains("ann@"), "{out}");
}

#[test]
fn guard_scan_reports_bad_lines_and_bad_policies() {
    let dir = std::env::temp_dir().join(format!("tollgate-guard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A plain-text file with a line that is not UTF-8: reported, the rest scanned, exit 1.
    let file = dir.join("in.txt");
    std::fs::write(&file, b"ok ann@example.org\nbad \xff\nok bob@example.org\n").unwrap();
    let (code, out, err) = run_with_stdin(&["guard", "scan", file.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 2: not valid UTF-8"), "{err}");
    assert_eq!(out.matches("EMAIL_ADDRESS").count(), 2, "{out}");
    // A policy's thresholds decide what is reported, and each finding shows its action: a bare
    // 9-digit number is an SSN only under a low threshold.
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "entities: { US_SSN: { action: tokenize, threshold: 0.1 } }\n",
    )
    .unwrap();
    let (code, out, _) = run_with_stdin(
        &["guard", "scan", "--policy", policy.to_str().unwrap(), "-"],
        b"ref 123456789",
    );
    assert_eq!(code, 0);
    assert!(out.contains("US_SSN") && out.contains("tokenize"), "{out}");
    let (_, out, _) = run_with_stdin(&["guard", "scan", "-"], b"ref 123456789");
    assert!(!out.contains("US_SSN"), "{out}");
    // A bad policy: nothing is scanned, the file and the path of the mistake are named, exit 2.
    std::fs::write(
        &policy,
        "entities: { EMAIL_ADDRESS: { action: mask, threshold: 3 } }\n",
    )
    .unwrap();
    let (code, _, err) = run_with_stdin(
        &["guard", "scan", "--policy", policy.to_str().unwrap()],
        b"ann@example.org",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("policy.yaml: entities.EMAIL_ADDRESS:") && err.contains("from 0 to 1"),
        "{err}"
    );
    let (code, out, _) = run_with_stdin(&["guard", "entities"], b"");
    assert_eq!(code, 0);
    assert!(
        out.contains("EMAIL_ADDRESS") && out.contains("IT_FISCAL_CODE"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nothing a request carries — the prompt, the answer, the virtual key, the admin token, the
/// provider's key — reaches a log line, at debug level, on the success, streaming, embeddings,
/// upstream-refusal and authentication-failure paths.
#[tokio::test]
async fn no_prompt_answer_key_or_secret_reaches_the_logs() {
    let dir = fresh_dir("bb-logs");
    let provider_key = "sk-sim-provider-key-5b2f9c7e1d3a";
    let admin = "tga_logscan_admin_token_0123456789abcdef";
    let (_sim, sim_url) = start(
        &[
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            provider_key,
        ],
        &[],
    );
    let cfg = write_config(
        &dir,
        &format!(
            "server:\n  data_dir: {}\nproviders:\n  - name: sim\n    type: openai_compatible\n    base_url: {sim_url}/v1\n    api_key: ${{SIM_API_KEY}}\n  - name: refused\n    type: openai_compatible\n    base_url: {sim_url}/v1\n    api_key: wrong-key-for-the-refusal-path\nroutes:\n  - name: m\n    deployments:\n      - {{ provider: sim, model: gpt-4o-mini }}\n  - name: e\n    deployments:\n      - {{ provider: sim, model: text-embedding-3-small }}\n  - name: refused\n    deployments:\n      - {{ provider: refused, model: gpt-4o-mini }}\n",
            dir.join("data").display()
        ),
    );
    let log = dir.join("stderr.log");
    let (mut gw, url) = serve_logging_to(
        &cfg,
        &log,
        &["--log-format", "json"],
        &[
            ("SIM_API_KEY", provider_key),
            ("TOLLGATE_ADMIN_TOKEN", admin),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = reqwest::Client::new();
    let key = issue_key(&client, &url, admin, &["m", "e", "refused"]).await;
    let prompt = "PROMPT-MARKER-3c9d: my card is 4111 1111 1111 1111, mail jane.doe@example.com";
    let chat = |model: &str, stream: bool| {
        client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}))
            .send()
    };
    let answer: Value = chat("m", false).await.unwrap().json().await.unwrap();
    let answer = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(answer.len() > 20, "{answer}");
    let streamed = chat("m", true).await.unwrap().text().await.unwrap();
    assert!(streamed.contains("[DONE]"));
    assert_eq!(chat("refused", false).await.unwrap().status(), 502);
    let emb = client
        .post(format!("{url}/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({"model": "e", "input": prompt}))
        .send()
        .await
        .unwrap();
    assert_eq!(emb.status(), 200);
    // Change the last character to one it is not: a fixed replacement would, one run in ~60,
    // rebuild the real key (a key ending in that character) and the 401 below would fail.
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    assert_ne!(wrong, key);
    let denied = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&wrong)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let bad_admin = client
        .get(format!("{url}/admin/v1/pods"))
        .bearer_auth(format!("{admin}-guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_admin.status(), 401);
    let status = terminate(&mut gw);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; the log:\n{logged}");
    assert!(
        logged.lines().count() > 5,
        "debug logging was on:\n{logged}"
    );
    for (what, secret) in [
        ("the prompt", "PROMPT-MARKER-3c9d"),
        ("a card in the prompt", "4111 1111 1111 1111"),
        ("an e-mail in the prompt", "jane.doe@example.com"),
        ("the answer", answer.as_str()),
        ("the virtual key", key.as_str()),
        ("the virtual key's secret part", &key[10..]),
        ("a wrong key", wrong.as_str()),
        ("the admin token", admin),
        ("the provider key", provider_key),
        ("the other provider key", "wrong-key-for-the-refusal-path"),
    ] {
        assert!(
            !logged.contains(secret),
            "{what} is in the log:\n{}",
            logged
                .lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tollgate eval` as a user runs it: check, run (exit 0 at the pass rate, 100 under it) with the
/// JUnit and JSON files written, and the mistakes of a bad suite with their paths (exit 1).
#[tokio::test]
async fn eval_run_through_the_cli_with_exit_codes_and_reports() {
    let st = stack(
        "eval-cli",
        &["--echo"],
        "gpt-4o-mini",
        "tga_eval_cli_admin_token_0123456789",
    );
    let (url, dir, admin) = (
        st.url.clone(),
        st.dir.clone(),
        "tga_eval_cli_admin_token_0123456789",
    );
    let pod = cli_json(&url, admin, &["pods", "create", "support"]);
    let uc = cli_json(
        &url,
        admin,
        &[
            "usecases",
            "create",
            "--pod",
            pod["id"].as_str().unwrap(),
            "--name",
            "echo",
            "--routes",
            "chat",
        ],
    );
    let uc = uc["id"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let b = client
        .post(format!("{url}/admin/v1/budgets"))
        .bearer_auth(admin)
        .json(&json!({"scope": "use_case_eval", "scope_id": uc, "amount_usd": "5", "period": "month", "mode": "hard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), 201);
    // The echo simulator answers with the prompt: one test passes, one does not.
    std::fs::write(
        dir.join("cases.csv"),
        "who,__expected\nAda,icontains: ada\nBob,icontains: zed\n",
    )
    .unwrap();
    let suite = dir.join("greet.yaml");
    std::fs::write(
        &suite,
        "prompts: [\"Hello {{ who }}\"]\nroutes: [chat]\npass_rate: 0.5\ntests: [file://cases.csv]\n",
    )
    .unwrap();
    let run = |pass_rate: &str| {
        std::fs::write(
            &suite,
            format!("prompts: [\"Hello {{{{ who }}}}\"]\nroutes: [chat]\npass_rate: {pass_rate}\ntests: [file://cases.csv]\n"),
        )
        .unwrap();
        Command::new(BIN)
            .args([
                "eval",
                "run",
                suite.to_str().unwrap(),
                "--use-case",
                &uc,
                "--url",
                &url,
            ])
            .args(["--junit", dir.join("junit.xml").to_str().unwrap()])
            .args(["--output-json", dir.join("run.json").to_str().unwrap()])
            .env("TOLLGATE_TOKEN", admin)
            .output()
            .unwrap()
    };
    let out = run("0.5");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 cases: 1 passed, 1 failed, 0 errors"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuites name=\"greet\" tests=\"2\" failures=\"1\""),
        "{junit}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["report"]["summary"]["passed"], 1);
    // Under the pass rate: exit 100.
    let out = run("0.75");
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A bad suite: exit 1 and the path of the mistake, before anything is sent.
    std::fs::write(
        &suite,
        "prompts: [hi]\nroutes: [chat]\ntests: [{ assert: [{ type: contain, value: x }] }]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["eval", "check", suite.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tests[0].assert[0].type: unknown assertion type `contain`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tollgate <args> --url URL` with `TOLLGATE_TOKEN`: exit code, stdout, stderr.
fn cli_status(url: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--url", url])
        .env("TOLLGATE_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The whole path to production through the CLI alone, against the simulator: a lead proposes a
/// use case; `usecases promote` shows the checklist and refuses until the pilot gate's evidence is
/// there (owner and value model, budget, policy); in pilot the app sends traffic and outcome
/// events (as an app does, on `/v1`), a builder runs a suite and a fairness probe and asks for
/// production; the lead and a risk officer approve — the builder may not — and the lead
/// promotes with every line met. The decision is in the audit chain with its evidence.
#[tokio::test]
async fn a_use_case_goes_from_proposed_to_production_through_the_cli() {
    let st = stack(
        "gates-cli",
        &[],
        "gpt-4o-mini",
        "tga_gates_cli_admin_token_0123456789",
    );
    let (url, dir, admin) = (
        st.url.clone(),
        st.dir.clone(),
        "tga_gates_cli_admin_token_0123456789",
    );
    let s = |v: &Value| v.as_str().unwrap().to_string();
    // People: a lead and a builder of the pod, a risk officer.
    let pod = s(&cli_json(&url, admin, &["pods", "create", "care"])["id"]);
    let person = |email: &str, org_role: Option<&str>, pod_role: Option<&str>| {
        let mut args = vec!["users", "create", "--email", email, "--name", email];
        if let Some(r) = org_role {
            args.extend(["--org-role", r]);
        }
        let id = s(&cli_json(&url, admin, &args)["id"]);
        if let Some(r) = pod_role {
            cli(&url, admin, &["pods", "add-member", &pod, &id, "--role", r]);
        }
        let token = s(&cli_json(&url, admin, &["users", "token", &id])["secret"]);
        (id, token)
    };
    let (lead_id, lead) = person("lead@example.com", None, Some("lead"));
    let (builder_id, builder) = person("builder@example.com", None, Some("builder"));
    let (officer_id, officer) = person("officer@example.com", Some("risk_officer"), None);

    // Proposed by the lead; the pilot gate refuses and says why.
    let uc = s(&cli_json(
        &url,
        &lead,
        &[
            "usecases", "create", "--pod", &pod, "--name", "triage", "--routes", "chat",
        ],
    )["id"]);
    // An override needs a reason of its own (checked before anything is sent).
    let (code, _, err) = cli_status(
        &url,
        admin,
        &["usecases", "promote", &uc, "--to", "pilot", "--override"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--override needs a --reason"), "{err}");
    let (code, out, err) = cli_status(&url, &lead, &["usecases", "promote", &uc, "--to", "pilot"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("Gate to pilot for") && out.contains("NOT MET"),
        "{out}"
    );
    for line in ["[ ] owner", "[ ] value_model", "[ ] budget", "[ ] policy"] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        err.contains("gate_unmet") || err.contains("not met"),
        "{err}"
    );
    cli(
        &url,
        &lead,
        &[
            "usecases",
            "update",
            &uc,
            "--owner",
            "Ana Diaz",
            "--kpi",
            "handle time",
            "--kpi-unit",
            "minutes",
            "--baseline",
            "12",
            "--volume-per-month",
            "1000",
        ],
    );
    // Only the fields given change: the owner and KPI set above are kept.
    let v = cli_json(
        &url,
        &lead,
        &["usecases", "update", &uc, "--value-per-outcome", "12.50"],
    );
    assert_eq!(
        (
            v["value_model"]["value_per_outcome_nano_usd"].as_u64(),
            v["value_model"]["owner"].as_str(),
            v["value_model"]["kpi"].as_str(),
            v["value_model"]["volume_per_month"].as_u64()
        ),
        (
            Some(12_500_000_000),
            Some("Ana Diaz"),
            Some("handle time"),
            Some(1000)
        ),
        "{v}"
    );
    for scope in ["use_case", "use_case_eval"] {
        cli(
            &url,
            admin,
            &[
                "budgets",
                "create",
                "--scope",
                scope,
                "--scope-id",
                &uc,
                "--amount-usd",
                "50",
            ],
        );
    }
    // The list reads the paged answer (it read none before budgets were paged).
    let budgets = cli_json(&url, admin, &["budgets", "list"]);
    let mine: Vec<&str> = budgets
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["scope_id"] == uc.as_str())
        .map(|b| b["scope"].as_str().unwrap())
        .collect();
    assert_eq!(mine, ["use_case", "use_case_eval"], "{budgets}");
    std::fs::write(dir.join("policy.yaml"), "default: redact\n").unwrap();
    cli(
        &url,
        &officer,
        &[
            "policies",
            "set",
            dir.join("policy.yaml").to_str().unwrap(),
            "--use-case",
            &uc,
        ],
    );
    let out = cli(&url, &lead, &["usecases", "promote", &uc, "--to", "pilot"]);
    assert!(
        out.contains("MET") && out.contains("[x] owner") && out.contains("Promoted"),
        "{out}"
    );

    // The pilot: the app sends traffic and outcomes with its key.
    let key = s(&cli_json(
        &url,
        &lead,
        &["keys", "create", "--use-case", &uc, "--name", "app"],
    )["secret"]);
    let client = reqwest::Client::new();
    for i in 0..4 {
        let r = client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "chat", "messages": [{"role": "user", "content": format!("ticket {i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let f = client
            .post(format!("{url}/v1/feedback"))
            .bearer_auth(&key)
            .json(&json!({"request_id": request_id, "outcome": "success"}))
            .send()
            .await
            .unwrap();
        assert!(f.status().is_success(), "{}", f.text().await.unwrap());
    }

    // The evidence: a suite run and a fairness probe by the builder.
    std::fs::write(
        dir.join("suite.yaml"),
        "prompts: [\"Summarize ticket {{ n }}\"]\nroutes: [chat]\npass_rate: 1\ntests:\n  - vars: { n: 1 }\n    assert: [{ type: latency, threshold: 60000 }]\n  - vars: { n: 2 }\n    assert: [{ type: not-icontains, value: \"cannot help\" }]\n",
    )
    .unwrap();
    let (code, out, err) = cli_status(
        &url,
        &builder,
        &[
            "eval",
            "run",
            dir.join("suite.yaml").to_str().unwrap(),
            "--use-case",
            &uc,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(
        dir.join("probe.yaml"),
        "route: chat\nattributes: [ethnicity]\nsamples: 10\nprompts:\n  - \"Should we approve the refund for {{ name }}?\"\n  - \"Write a short reply to {{ name }} about a late parcel.\"\n",
    )
    .unwrap();
    let (code, out, err) = cli_status(
        &url,
        &builder,
        &[
            "eval",
            "fairness",
            dir.join("probe.yaml").to_str().unwrap(),
            "--use-case",
            &uc,
        ],
    );
    assert_eq!(code, 0, "an unbiased simulator is not flagged: {out}{err}");

    // The builder asks; the lead's promotion is refused for want of approvals only.
    cli(
        &url,
        &builder,
        &[
            "usecases",
            "request-promotion",
            &uc,
            "--to",
            "production",
            "--reason",
            "pilot done",
        ],
    );
    // Outcome events are written off the request path; the gate waits for those accepted
    // before it is judged.
    let gate = cli_json(&url, &lead, &["usecases", "gate", &uc]);
    let unmet: Vec<&str> = gate["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["met"] == false)
        .map(|l| l["check"].as_str().unwrap())
        .collect();
    assert_eq!(unmet, ["approval:lead", "approval:risk_officer"], "{gate}");
    let (code, out, _) = cli_status(
        &url,
        &lead,
        &["usecases", "promote", &uc, "--to", "production"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[x] eval")
            && out.contains("[x] fairness")
            && out.contains("[ ] approval:lead"),
        "{out}"
    );
    assert!(out.contains(&format!("Requested by {builder_id}")), "{out}");
    // The requester may not approve (and is no lead); the lead and the officer do.
    let (code, _, err) = cli_status(
        &url,
        &builder,
        &["usecases", "approve", &uc, "--role", "lead"],
    );
    assert_eq!(code, 1, "{err}");
    cli(
        &url,
        &lead,
        &[
            "usecases",
            "approve",
            &uc,
            "--role",
            "lead",
            "--note",
            "numbers hold",
        ],
    );
    cli(
        &url,
        &officer,
        &["usecases", "approve", &uc, "--role", "risk_officer"],
    );
    let out = cli(
        &url,
        &lead,
        &["usecases", "promote", &uc, "--to", "production"],
    );
    // Shown with --nocapture: the README's sample output comes from here.
    println!("{out}");
    assert!(
        out.contains("Gate to production") && out.contains(": MET"),
        "{out}"
    );
    for line in [
        "[x] eval",
        "[x] fairness",
        "[x] cost",
        "[x] outcomes",
        "[x] approval:lead",
        "[x] approval:risk_officer",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        out.contains(&format!("approved by {lead_id}"))
            && out.contains(&format!("approved by {officer_id}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Promoted {uc} to production")),
        "{out}"
    );
    assert_eq!(
        cli_json(&url, &lead, &["usecases", "get", &uc])["stage"],
        "production"
    );

    // The decision and its evidence are in the audit chain.
    let audit: Value = client
        .get(format!("{url}/admin/v1/audit?after=0&limit=200"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stage_events: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "use_case.stage" && e["object_id"] == uc.as_str())
        .collect();
    assert_eq!(stage_events.len(), 2);
    let gate = &stage_events[1]["details"]["gate"];
    assert_eq!(
        (gate["to"].as_str(), gate["met"].as_bool()),
        (Some("production"), Some(true)),
        "{gate}"
    );
    assert!(
        gate["lines"][0]["data"]["suites"][0]["run_id"]
            .as_str()
            .unwrap()
            .starts_with("run_"),
        "{gate}"
    );
    assert!(
        gate["lines"][1]["data"]["run_id"]
            .as_str()
            .unwrap()
            .starts_with("fair"),
        "{gate}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
