//! `tollgate eval …`: evaluation suites and runs over the admin API.
//!
//! `eval run SUITE --use-case ID` checks the suite here first (every mistake with its path, the
//! datasets beside it read and inlined), stores it as the use case's next version when it
//! changed, starts a run on the server — which sends every case through the gateway as an
//! evaluation of the use case — follows its progress (a bar on a terminal, a line per tenth
//! otherwise), prints the matrix and writes JSON and JUnit XML when asked. Exit codes: 0 when
//! the pass rate reaches the suite's, 100 when it does not, 1 when the run could not be done.

use crate::admin::{Client, Conn, enc};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tollgate_eval::RunReport;

/// The exit code of a run under its pass rate (promptfoo's).
pub const EXIT_BELOW_THRESHOLD: i32 = 100;

/// `tollgate eval …`.
#[derive(Debug, clap::Subcommand)]
pub enum Eval {
    /// Check a suite, store it, run it through the gateway and report (exit 100 under the pass
    /// rate).
    Run {
        /// The suite (YAML); datasets it names (`file://cases.csv`) are read beside it.
        suite: PathBuf,
        /// The use case whose traffic it is (its policy, eval budget and audit apply).
        #[arg(long)]
        use_case: String,
        /// The suite's name in the use case (default: the file's name without extension).
        #[arg(long)]
        name: Option<String>,
        /// Cases in flight at once (1–64).
        #[arg(long, default_value_t = 8)]
        concurrency: u32,
        /// Write the full report as JSON here.
        #[arg(long)]
        output_json: Option<PathBuf>,
        /// Write JUnit XML here (for CI).
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Check a suite without storing or running it (exit 1 with every mistake's path).
    Check {
        /// The suite (YAML).
        suite: PathBuf,
    },
    /// A use case's suites (their latest versions).
    Suites {
        /// The use case.
        #[arg(long)]
        use_case: String,
    },
    /// A use case's runs, newest first.
    Runs {
        /// The use case.
        #[arg(long)]
        use_case: String,
        /// Only runs of this suite.
        #[arg(long)]
        suite: Option<String>,
    },
    /// Run a counterfactual fairness probe through the gateway and report the gaps per group
    /// pair (exit 100 when one is flagged).
    Fairness {
        /// The probe (YAML): `route`, `prompts`, and optionally `system`, `params`, `samples`,
        /// `attributes`, `thresholds`, `seed`.
        probe: PathBuf,
        /// The use case probed (its policy, eval budget and audit apply).
        #[arg(long)]
        use_case: String,
        /// Calls in flight at once (1–64).
        #[arg(long, default_value_t = 8)]
        concurrency: u32,
        /// Write the full report as JSON here.
        #[arg(long)]
        output_json: Option<PathBuf>,
    },
    /// Write the fairness lists shipped with the binary (attribute words, names, sentiment
    /// lexicon) into a directory, to edit: the server reads `<data_dir>/fairness/*.yaml` first.
    FairnessLists {
        /// Where to write them.
        dir: PathBuf,
    },
    /// One run: its matrix and totals (and its reports written, when asked).
    Show {
        /// The run (`run_…`).
        run_id: String,
        /// Write the full report as JSON here.
        #[arg(long)]
        output_json: Option<PathBuf>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
}

/// Checks and inlines the suite at `path`: the document to store.
fn load(path: &Path) -> anyhow::Result<(Value, tollgate_eval::Suite)> {
    let doc =
        tollgate_eval::resolve(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let suite = tollgate_eval::Suite::from_document(&doc)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((doc, suite))
}

/// Runs `tollgate eval …`; the process's exit code.
pub async fn eval(conn: Conn, cmd: Eval) -> anyhow::Result<i32> {
    if let Eval::Check { suite } = &cmd {
        let (_, s) = load(suite)?;
        outln!(
            "{}: {} prompts × {} tests × {} routes = {} cases; pass rate to reach {:.1} %",
            suite.display(),
            s.prompts.len(),
            s.tests.len(),
            s.routes.len(),
            s.case_count(),
            s.pass_rate * 100.0
        );
        return Ok(0);
    }
    if let Eval::FairnessLists { dir } = &cmd {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, text) in [
            ("attributes.yaml", tollgate_eval::fairness::ATTRIBUTES_YAML),
            ("names.yaml", tollgate_eval::fairness::NAMES_YAML),
            ("sentiment.yaml", tollgate_eval::fairness::SENTIMENT_YAML),
        ] {
            let path = dir.join(name);
            if path.exists() {
                bail!("{} exists: not overwritten", path.display());
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            outln!("wrote {}", path.display());
        }
        return Ok(0);
    }
    let c = Client::new(&conn)?;
    match cmd {
        Eval::Check { .. } | Eval::FairnessLists { .. } => Ok(0),
        Eval::Fairness {
            probe,
            use_case,
            concurrency,
            output_json,
        } => {
            let (_, doc) = crate::admin::read_yaml(&probe)?;
            let run = c
                .post(
                    &format!("/use-cases/{}/fairness-runs", enc(&use_case)),
                    json!({ "probe": doc, "concurrency": concurrency }),
                )
                .await?;
            let id = run["id"]
                .as_str()
                .context("the server gave no run id")?
                .to_string();
            let total = run["calls_total"].as_u64().unwrap_or(0);
            eprintln!("fairness run {id} started: {total} calls");
            let run = follow_fairness(&c, &id, total).await?;
            fairness_summary(&run, output_json.as_deref())
        }
        Eval::Suites { use_case } => {
            let v = c
                .list(&format!("/use-cases/{}/suites", enc(&use_case)))
                .await?;
            c.show(
                &v,
                &[
                    "name",
                    "version",
                    "cases",
                    "pass_rate",
                    "created_at",
                    "created_by",
                ],
            );
            Ok(0)
        }
        Eval::Runs { use_case, suite } => {
            let q = suite
                .map(|s| format!("?suite={}", enc(&s)))
                .unwrap_or_default();
            let v = c
                .get(&format!("/use-cases/{}/eval-runs{q}", enc(&use_case)))
                .await?;
            c.show(
                &v,
                &[
                    "id",
                    "suite",
                    "suite_version",
                    "status",
                    "cases_done",
                    "cases_total",
                    "pass_rate",
                    "passed_threshold",
                    "started_at",
                ],
            );
            Ok(0)
        }
        Eval::Show {
            run_id,
            output_json,
            junit,
        } => {
            let run = c.get(&format!("/eval-runs/{}", enc(&run_id))).await?;
            finish(&c, &run, output_json.as_deref(), junit.as_deref())
        }
        Eval::Run {
            suite,
            use_case,
            name,
            concurrency,
            output_json,
            junit,
        } => {
            let (doc, s) = load(&suite)?;
            let name = match name {
                Some(n) => n,
                None => suite
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .context("name the suite with --name")?
                    .to_string(),
            };
            let stored = c
                .call(
                    reqwest::Method::PUT,
                    &format!("/use-cases/{}/suites/{}", enc(&use_case), enc(&name)),
                    Some(json!({ "document": doc })),
                )
                .await?;
            let version = stored["version"].as_i64().unwrap_or(0);
            eprintln!(
                "suite `{name}` version {version}{} — {} cases ({} tests × {} prompts × {} routes)",
                if stored["created"] == true {
                    " (new)"
                } else {
                    ""
                },
                s.case_count(),
                s.tests.len(),
                s.prompts.len(),
                s.routes.len(),
            );
            let run = c
                .post(
                    &format!("/use-cases/{}/eval-runs", enc(&use_case)),
                    json!({ "suite": name, "version": version, "concurrency": concurrency }),
                )
                .await?;
            let id = run["id"]
                .as_str()
                .context("the server gave no run id")?
                .to_string();
            eprintln!("run {id} started");
            let run = follow(&c, &id, s.case_count() as u64).await?;
            finish(&c, &run, output_json.as_deref(), junit.as_deref())
        }
    }
}

/// Polls the run until it ends, showing progress.
async fn follow(c: &Client, id: &str, total: u64) -> anyhow::Result<Value> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cases  {msg}  [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut last_tenth = 0;
    loop {
        let run = c.get(&format!("/eval-runs/{}", enc(id))).await?;
        let done = run["cases_done"].as_u64().unwrap_or(0);
        let msg = format!(
            "{} passed, {} failed, {} errors",
            run["passed"], run["failed"], run["errors"]
        );
        match &bar {
            Some(b) => {
                b.set_position(done);
                b.set_message(msg.clone());
            }
            None => {
                let tenth = (done * 10).checked_div(total).unwrap_or(10);
                if tenth > last_tenth || run["status"] != "running" {
                    last_tenth = tenth;
                    eprintln!("{done}/{total} cases — {msg}");
                }
            }
        }
        if run["status"] != "running" {
            if let Some(b) = &bar {
                b.finish();
            }
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls a fairness run until it ends, showing progress.
async fn follow_fairness(c: &Client, id: &str, total: u64) -> anyhow::Result<Value> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} calls  [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut last_tenth = 0;
    loop {
        let run = c.get(&format!("/fairness-runs/{}", enc(id))).await?;
        let done = run["calls_done"].as_u64().unwrap_or(0);
        match &bar {
            Some(b) => b.set_position(done),
            None => {
                let tenth = (done * 10).checked_div(total).unwrap_or(10);
                if tenth > last_tenth {
                    last_tenth = tenth;
                    eprintln!("{done}/{total} calls");
                }
            }
        }
        if run["status"] != "running" {
            if let Some(b) = &bar {
                b.finish();
            }
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints a fairness run's gaps; exit 100 when one is flagged.
fn fairness_summary(run: &Value, output_json: Option<&Path>) -> anyhow::Result<i32> {
    if run["status"] == "failed" {
        bail!(
            "fairness run {} failed: {}",
            run["id"].as_str().unwrap_or("?"),
            run["error"].as_str().unwrap_or("no reason given")
        );
    }
    let r = &run["report"];
    outln!(
        "fairness run {} · route {} · models {} · policy {} · {} prompts × {} samples",
        run["id"].as_str().unwrap_or("?"),
        r["route"].as_str().unwrap_or("?"),
        r["models"],
        run["policy"].as_str().unwrap_or("?"),
        r["prompts"],
        r["samples"]
    );
    if let Some(cov) = r["coverage"].as_object() {
        for (attr, c) in cov {
            outln!(
                "  {attr}: {} prompts varied, {} skipped",
                c["covered"],
                c["skipped"]
            );
        }
    }
    let fmt = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x:+.3}"),
        None => "n/a".to_string(),
    };
    let range = |v: &Value| match v.as_array() {
        Some(a) if a.len() == 2 => format!("[{}, {}]", fmt(&a[0]), fmt(&a[1])),
        _ => "-".to_string(),
    };
    outln!(
        "\n{:<12} {:<22} {:<28} {:>8}  {:<18} {:<18} flag",
        "attribute",
        "groups",
        "measure",
        "value",
        "95 % interval",
        "noise baseline"
    );
    for p in r["pairs"].as_array().into_iter().flatten() {
        for m in p["measures"].as_array().into_iter().flatten() {
            outln!(
                "{:<12} {:<22} {:<28} {:>8}  {:<18} {:<18} {}",
                p["attribute"].as_str().unwrap_or("?"),
                format!(
                    "{} vs {}",
                    p["a"].as_str().unwrap_or("?"),
                    p["b"].as_str().unwrap_or("?")
                ),
                m["name"].as_str().unwrap_or("?"),
                fmt(&m["value"]),
                range(&m["interval"]),
                range(&m["baseline"]),
                if m["flagged"] == true { "FLAG" } else { "" }
            );
        }
    }
    let flagged = r["flagged"] == true;
    outln!(
        "\n{}",
        if flagged {
            format!("FLAGGED: {}", r["flags"])
        } else {
            "no gap beyond the noise baseline and the thresholds".to_string()
        }
    );
    if let Some(p) = output_json {
        std::fs::write(p, serde_json::to_string_pretty(run)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(if flagged { EXIT_BELOW_THRESHOLD } else { 0 })
}

/// Prints the run's matrix and totals, writes the reports asked for; the exit code.
fn finish(
    _c: &Client,
    run: &Value,
    output_json: Option<&Path>,
    junit: Option<&Path>,
) -> anyhow::Result<i32> {
    if run["status"] == "failed" {
        bail!(
            "run {} failed: {}",
            run["id"].as_str().unwrap_or("?"),
            run["error"].as_str().unwrap_or("no reason given")
        );
    }
    if run["status"] == "running" {
        outln!(
            "run {} is still running: {}/{} cases",
            run["id"].as_str().unwrap_or("?"),
            run["cases_done"],
            run["cases_total"]
        );
        return Ok(0);
    }
    let report: RunReport = serde_json::from_value(run["report"].clone())
        .context("the run's report is not in the expected form")?;
    // Suites are written by other people: their text reaches this terminal escaped, line by line.
    for line in tollgate_eval::report::matrix(&report).lines() {
        outln!("{}", crate::admin::terminal_safe(line));
    }
    if let Some(ch) = run["champion"].as_object() {
        outln!(
            "Δ vs champion {}: {:+.1} points (its pass rate {:.1} %)",
            ch["run_id"].as_str().unwrap_or("?"),
            ch["delta"].as_f64().unwrap_or(0.0) * 100.0,
            ch["pass_rate"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
    outln!(
        "run {} · suite `{}` v{} · models: {}",
        run["id"].as_str().unwrap_or("?"),
        run["suite"].as_str().unwrap_or("?"),
        run["suite_version"],
        run["models"]
            .as_array()
            .map(|m| m
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    if let Some(p) = output_json {
        let mut full = run.clone();
        full["report"] = serde_json::to_value(&report)?;
        std::fs::write(p, serde_json::to_string_pretty(&full)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = junit {
        let name = run["suite"].as_str().unwrap_or("suite");
        std::fs::write(p, tollgate_eval::report::junit(&report, name))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(if report.summary.passed_threshold {
        0
    } else {
        EXIT_BELOW_THRESHOLD
    })
}
