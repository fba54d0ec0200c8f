//! `tollgate demo`: a simulator and a gateway on free ports, sample traffic, then wait for Ctrl-C.
//!
//! Two simulators run in-process: a healthy one (realistic latency and streaming pace) and a flaky
//! one that answers 503, so the sample traffic shows fallback at work. The config the demo serves
//! is written to `<data-dir>/demo.yaml` for reading.

use crate::{LogFormat, init_logging, shutdown_signal};
use anyhow::Context;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tollgate_simulator::{SimConfig, Simulator};

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Gateway listen address (port 0: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Data directory.
    #[arg(long, default_value = "./tollgate-data")]
    data_dir: PathBuf,
    /// Sample requests to send.
    #[arg(long, default_value_t = 12)]
    requests: usize,
    /// Stop after the sample traffic instead of waiting for Ctrl-C.
    #[arg(long)]
    no_wait: bool,
}

async fn start_sim(
    cfg: SimConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut stop = stop;
    let handle = tokio::spawn(async move {
        let _ = Simulator::new(cfg)
            .serve(listener, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok((format!("http://{addr}"), handle))
}

pub(crate) fn demo_config(
    sim: &str,
    flaky: &str,
    listen: std::net::SocketAddr,
    data_dir: &std::path::Path,
) -> String {
    format!(
        r#"# Written by `tollgate demo`. The simulators it names stop with the demo.
server:
  listen: {listen}
  data_dir: {data_dir}
providers:
  - name: sim
    type: openai_compatible
    base_url: {sim}/v1
    quota: {{ requests_per_minute: 500, tokens_per_minute: 2000000 }}
  - name: sim-anthropic
    type: anthropic
    base_url: {sim}
    api_key: demo-key
    quota: {{ requests_per_minute: 400, tokens_per_minute: 1000000 }}
  - name: flaky
    type: openai_compatible
    base_url: {flaky}/v1
    quota: {{ requests_per_minute: 100 }}
routes:
  - name: chat-default
    deployments:
      - {{ provider: sim, model: gpt-4o-mini, weight: 1 }}
  - name: gpt-4o-mini
    deployments:
      - {{ provider: sim, model: gpt-4o-mini }}
  - name: claude-haiku
    deployments:
      - {{ provider: sim-anthropic, model: claude-3-5-haiku-latest }}
  - name: claude-sonnet
    deployments:
      - {{ provider: sim-anthropic, model: claude-sonnet-4-5 }}
    fallbacks: [claude-haiku]
  - name: chat-resilient
    deployments:
      - {{ provider: flaky, model: gpt-4o-mini }}
    fallbacks: [chat-default]
    retries: 0
  - name: text-embedding-3-small
    deployments:
      - {{ provider: sim, model: text-embedding-3-small }}
"#,
        data_dir = data_dir.display()
    )
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let healthy = SimConfig {
        latency: Duration::from_millis(120),
        ttft: Duration::from_millis(60),
        tokens_per_second: 150.0,
        cached_tokens: 8,
        ..SimConfig::default()
    };
    let flaky = SimConfig {
        error_rate: 1.0,
        error_status: 503,
        ..SimConfig::default()
    };
    let (sim_url, sim_task) = start_sim(healthy, stop_rx.clone()).await?;
    let (flaky_url, flaky_task) = start_sim(flaky, stop_rx.clone()).await?;

    let yaml = demo_config(&sim_url, &flaky_url, args.listen, &args.data_dir);
    let path = args.data_dir.join("demo.yaml");
    std::fs::write(&path, &yaml).with_context(|| format!("cannot write {}", path.display()))?;
    let cfg = tollgate_config::Config::from_yaml_str(&yaml, &|_| None)?;
    let gw = tollgate_gateway::Gateway::open(cfg).await?;
    let control = crate::serve::control_plane(&gw).await?;
    let admin_token = control.take_new_admin_token();
    let keys = crate::seed::seed(&gw).await?;
    let sample_suite = crate::seed::evaluations(&gw, &args.data_dir).await?;
    let history = crate::history::write(&gw, gw.clock.now_ms()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    control.set_gateway_address(addr);
    // Scheduled evaluations start on this server when due.
    let _scheduler = control.spawn_scheduler(std::time::Duration::from_secs(30));
    let mut gw_stop = stop_rx.clone();
    let gw_task = tokio::spawn(tollgate_gateway::serve(
        gw,
        tollgate_control::router(control),
        listener,
        async move {
            let _ = gw_stop.wait_for(|s| *s).await;
        },
    ));

    // Installed before the banner, so a signal sent once it is printed stops the demo cleanly.
    let stop_signal = (!args.no_wait).then(shutdown_signal);
    let base = format!("http://{addr}/v1");
    outln!("Tollgate demo");
    outln!("  gateway    {base}");
    outln!("  simulator  {sim_url}/v1   (flaky one: {flaky_url}/v1)");
    outln!("  config     {}", path.display());
    outln!("  metrics    http://{addr}/metrics");
    outln!("  admin API  http://{addr}/admin/v1/openapi.json");
    match &admin_token {
        Some(t) => outln!("  admin token (shown once) {t}"),
        None => outln!(
            "  admin token: TOLLGATE_ADMIN_TOKEN, or the one printed when {} was first created",
            args.data_dir.display()
        ),
    }
    match history {
        Some(h) => outln!(
            "  history    {} requests and {} outcome events over the last {} days, backdated and marked as demo data (key demo-history)",
            h.requests,
            h.outcomes,
            crate::history::DAYS
        ),
        None => outln!("  history    already in {}", args.data_dir.display()),
    }
    outln!("\nSample organization: 3 pods, 5 use cases. Demo keys (new each run, shown once):");
    for k in &keys {
        outln!("  {:<26} {:<11} {}", k.use_case, k.stage.as_str(), k.secret);
    }
    let key_of = |name: &str| {
        keys.iter()
            .find(|k| k.use_case == name)
            .map(|k| k.secret.clone())
            .unwrap_or_default()
    };
    let triage = key_of("ticket-triage");
    outln!();
    outln!("Try it:");
    outln!(
        "  curl -s {base}/chat/completions -H 'content-type: application/json' -H 'authorization: Bearer {triage}' \\\n    -d '{{\"model\":\"chat-default\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\n"
    );
    outln!("Or with the OpenAI SDK (pip install openai):");
    outln!("  from openai import OpenAI");
    outln!(
        "  client = OpenAI(base_url=\"{base}\", api_key=\"{}\")",
        key_of("invoice-extraction")
    );
    outln!("  print(client.chat.completions.create(model=\"claude-haiku\",");
    outln!(
        "        messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}]).choices[0].message.content)\n"
    );

    sample_traffic(&base, args.requests, &key_of).await;
    let month = &tollgate_types::time::rfc3339(tollgate_store::now_ms())[..7];
    outln!("\nReports (with TOLLGATE_TOKEN set to the admin token):");
    for cmd in [
        format!("report spend --by use_case --month {month}"),
        format!("report focus --month {month} --out focus-{month}.csv"),
        "report advice".to_string(),
        "report kpis --window month".to_string(),
        "report portfolio --svg portfolio.svg".to_string(),
    ] {
        outln!("  tollgate {cmd} --url http://{addr}");
    }
    if let Some((uc, path)) = &sample_suite {
        outln!("\nEvaluations (each use case has a $5/month eval budget):");
        outln!(
            "  tollgate eval run {} --use-case {uc} --url http://{addr}",
            path.display()
        );
    }
    let _ = std::io::stdout().flush();

    if let Some(stop_signal) = stop_signal {
        outln!("\nRunning. Press Ctrl-C to stop.");
        let _ = std::io::stdout().flush();
        stop_signal.await;
    }
    outln!("Stopping…");
    let _ = stop_tx.send(true);
    let _ = gw_task.await;
    let _ = sim_task.await;
    let _ = flaky_task.await;
    outln!("Stopped.");
    Ok(())
}

/// Sends `n` sample requests across the use cases and routes and prints one line each. Every
/// seventh and eighth request calls a proposed and a retired use case, to show them refused.
async fn sample_traffic(base: &str, n: usize, key_of: &dyn Fn(&str) -> String) {
    let client = reqwest::Client::new();
    let weather = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    outln!("Sample traffic ({n} requests):");
    outln!(
        "  {:<26} {:<24} {:<7} {:>6} {:>9} {:>8}  provider",
        "use case",
        "route",
        "kind",
        "status",
        "attempts",
        "ms"
    );
    for i in 0..n {
        let chat = |model: &str, content: &str| json!({"model": model, "messages": [{"role": "user", "content": content}]});
        let (use_case, route, kind, body, path) = match i % 8 {
            0 => (
                "ticket-triage",
                "chat-default",
                "chat",
                chat("chat-default", &format!("Summarise ticket #{i}")),
                "chat/completions",
            ),
            1 => (
                "reply-drafting",
                "chat-default",
                "stream",
                json!({"model": "chat-default", "stream": true, "messages": [{"role": "user", "content": "Draft a reply"}]}),
                "chat/completions",
            ),
            2 => (
                "reply-drafting",
                "claude-haiku",
                "tools",
                json!({"model": "claude-haiku", "tools": weather, "messages": [{"role": "user", "content": "Weather in Oslo?"}]}),
                "chat/completions",
            ),
            3 => (
                "ticket-triage",
                "chat-resilient",
                "chat",
                chat("chat-resilient", "Classify this ticket"),
                "chat/completions",
            ),
            4 => (
                "invoice-extraction",
                "claude-sonnet",
                "stream",
                json!({"model": "claude-sonnet", "stream": true, "messages": [{"role": "user", "content": "Extract the invoice total"}]}),
                "chat/completions",
            ),
            5 => (
                "ticket-triage",
                "text-embedding-3-small",
                "embed",
                json!({"model": "text-embedding-3-small", "input": ["refund", "invoice"]}),
                "embeddings",
            ),
            6 => (
                "spend-forecast-assistant",
                "chat-default",
                "chat",
                chat("chat-default", "Forecast March"),
                "chat/completions",
            ),
            _ => (
                "leave-policy-bot",
                "chat-default",
                "chat",
                chat("chat-default", "How many leave days?"),
                "chat/completions",
            ),
        };
        let started = Instant::now();
        let req = client
            .post(format!("{base}/{path}"))
            .bearer_auth(key_of(use_case))
            .header("x-tollgate-user", format!("agent-{}", i % 5))
            .json(&body);
        let line = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let header = |h: &str| {
                    resp.headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                let (attempts, provider) =
                    (header("x-tollgate-attempts"), header("x-tollgate-provider"));
                let text = resp.text().await.unwrap_or_default();
                let note = if status >= 400 {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(|c| format!("  ({c})")))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                format!(
                    "  {use_case:<26} {route:<24} {kind:<7} {status:>6} {attempts:>9} {:>8}  {provider}{note}",
                    started.elapsed().as_millis()
                )
            }
            Err(e) => format!("  {use_case:<26} {route:<24} {kind:<7} failed: {e}"),
        };
        outln!("{line}");
    }
}
