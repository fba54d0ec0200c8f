//! `tollgate`: the one binary. It only wires: parse the command line, read config, start the
//! libraries, wait for a signal. Every subcommand lives in its own module.

/// mimalloc instead of the system allocator: the request path allocates many small objects on
/// every worker thread at once, where glibc's allocator contends (see
/// docs/decisions/0008-allocator.md and bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[macro_use]
mod out;
mod admin;
mod audit;
mod demo;
mod eval;
mod gates;
mod guard;
mod history;
mod seed;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tollgate: the control plane between your teams and the LLMs they use.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Run a simulated LLM upstream (OpenAI- and Anthropic-compatible).
    Simulate(simulate::SimulateArgs),
    /// Start a simulator and a gateway, send sample traffic, and keep both running until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Pods and their members (admin API).
    Pods {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Pods,
    },
    /// Users and their personal tokens (admin API).
    Users {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Users,
    },
    /// Use cases and their stages (admin API).
    Usecases {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::UseCases,
    },
    /// Budgets on keys, use cases, pods and the org (admin API).
    Budgets {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Budgets,
    },
    /// The organization's stage gates: what entering pilot and production takes (admin API).
    Gates {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Gates,
    },
    /// Virtual keys (admin API).
    Keys {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Keys,
    },
    /// Guard policies: the org default and each use case's (admin API; YAML in and out).
    Policies {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Policies,
    },
    /// Stored payloads (admin API): an auditor's read, with a reason.
    Payloads {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Payloads,
    },
    /// Erase an end user: their stored payloads become unreadable, their id leaves the ledger
    /// (admin API; risk officers and platform admins).
    Erase {
        #[command(flatten)]
        conn: admin::Conn,
        /// The id the requests carried in `x-tollgate-user`.
        #[arg(long)]
        end_user: String,
    },
    /// Spend reports (admin API).
    Report {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: admin::Report,
    },
    /// Evaluation suites and runs: check a suite, run it through the gateway, report (admin
    /// API; exit 100 when a run's pass rate is under its suite's).
    Eval {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        command: eval::Eval,
    },
    /// The guard engine: scan text for personal data, secrets and injection signs.
    Guard {
        #[command(subcommand)]
        command: guard::GuardCommand,
    },
    /// The tamper-evident audit chain: verify it, export it.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print what would be served (secrets shown as ***).
    Check {
        /// The YAML file.
        file: PathBuf,
    },
}

/// Log format on stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Sets up `tracing` on stderr; `RUST_LOG` overrides `default_level`.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Resolves on Ctrl-C or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: callers
/// call it before they print the line that tells scripts the server is up, so a signal sent right
/// after that line stops the server cleanly instead of killing it with the default action.
/// Must be called inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(int) => {},
                () = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Guard { command } => {
            // 0: scanned; 1: some input lines could not be scanned; 2: nothing could be.
            let code = guard::run(command).unwrap_or_else(|e| {
                // A reader that stops early (`| head`) is no error.
                let closed = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
                if closed {
                    return 0;
                }
                eprintln!("error: {e:#}");
                2
            });
            std::process::exit(code);
        }
        command => Cli { command },
    };
    if let Command::Config {
        command: ConfigCommand::Check { file },
    } = &cli.command
    {
        return config_check(file);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Simulate(args) => simulate::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Pods { conn, command } => admin::pods(conn, command).await,
            Command::Users { conn, command } => admin::users(conn, command).await,
            Command::Usecases { conn, command } => admin::use_cases(conn, command).await,
            Command::Keys { conn, command } => admin::keys(conn, command).await,
            Command::Budgets { conn, command } => admin::budgets(conn, command).await,
            Command::Gates { conn, command } => admin::gates(conn, command).await,
            Command::Policies { conn, command } => admin::policies(conn, command).await,
            Command::Payloads { conn, command } => admin::payloads(conn, command).await,
            Command::Erase { conn, end_user } => admin::erase(conn, end_user).await,
            Command::Report { conn, command } => admin::report(conn, command).await,
            Command::Eval { conn, command } => {
                let code = eval::eval(conn, command).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Audit { command } => {
                let code = audit::run(command).await.unwrap_or_else(|e| {
                    eprintln!("Error: {e:#}");
                    2
                });
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Config { .. } | Command::Guard { .. } => Ok(()),
        }
    })
}

fn config_check(file: &std::path::Path) -> anyhow::Result<()> {
    match tollgate_config::Config::from_file(file) {
        Ok(cfg) => {
            let catalog = tollgate_meter::Catalog::builtin()?;
            let version = catalog.version.clone();
            let meter = match tollgate_meter::Meter::from_config(&cfg, catalog) {
                Ok(m) => m,
                Err(problems) => {
                    eprintln!("{}: invalid prices:", file.display());
                    for p in problems {
                        eprintln!("  - {p}");
                    }
                    std::process::exit(1);
                }
            };
            outln!("{} is valid.\n", file.display());
            out!("{}", cfg.summary());
            outln!("prices (catalog {version}, USD per 1M tokens in/out):");
            for (i, r) in cfg.routes.iter().enumerate() {
                for (j, d) in r.deployments.iter().enumerate() {
                    let usd = |n: u64| tollgate_meter::Money(n).to_string();
                    let line = match meter.pricing(i, j) {
                        tollgate_meter::Pricing::Catalog { entry, prices } => format!(
                            "catalog `{entry}`  {} / {}",
                            usd(prices.input),
                            usd(prices.output)
                        ),
                        tollgate_meter::Pricing::Override {
                            prices,
                            self_hosted,
                        } => format!(
                            "{}  {} / {}",
                            if *self_hosted {
                                "self-hosted (GPU hour ÷ throughput)"
                            } else {
                                "config override"
                            },
                            usd(prices.input),
                            usd(prices.output)
                        ),
                        tollgate_meter::Pricing::Unpriced => {
                            "UNPRICED: served, but flagged and alerted; add `price:`".to_string()
                        }
                    };
                    outln!("  {:<24} {:<28} {line}", r.name, d.model);
                }
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            std::process::exit(1);
        }
    }
}
