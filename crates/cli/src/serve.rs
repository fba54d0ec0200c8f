//! `tollgate serve --config FILE [--listen ADDR]`.

use crate::{LogFormat, init_logging, shutdown_signal};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "tollgate.yaml")]
    config: PathBuf,
    /// Listen address; overrides `server.listen`. Port 0 picks a free port.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, "info");
    let mut cfg = tollgate_config::Config::from_file(&args.config)?;
    if let Some(listen) = args.listen {
        cfg.server.listen = listen;
    }
    std::fs::create_dir_all(&cfg.server.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.server.data_dir.display()))?;
    let listen = cfg.server.listen;
    let gw = tollgate_gateway::Gateway::open(cfg).await?;
    let control = control_plane(&gw).await?;
    if let Some(token) = control.take_new_admin_token() {
        // Only its hash is kept in the store. The token goes to a file only the owner can read —
        // never into the log stream, which log collectors ship elsewhere — and, when a person
        // started the server on a terminal, to that terminal too.
        let path = gw.config.server.data_dir.join("admin-token");
        tollgate_gateway::keys::write_private_file(&path, format!("{token}\n").as_bytes())
            .with_context(|| {
                format!(
                    "cannot write the generated admin token to {}",
                    path.display()
                )
            })?;
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!(
                "\nNo TOLLGATE_ADMIN_TOKEN was set, so an admin token was generated:\n\n    {token}\n\nIt is also in {} (mode 0600). Use it as `Authorization: Bearer <token>` on /admin/v1 (or TOLLGATE_TOKEN for the CLI).\n",
                path.display()
            );
        } else {
            tracing::warn!(file = %path.display(), "no TOLLGATE_ADMIN_TOKEN was set: an admin token was generated and written to this file (mode 0600)");
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let stop = shutdown_signal();
    control.set_gateway_address(addr);
    // Scheduled evaluations start on this server when due.
    let _scheduler = control.spawn_scheduler(std::time::Duration::from_secs(30));
    tracing::info!(%addr, routes = gw.config.routes.len(), providers = gw.config.providers.len(), "gateway listening");
    // The one stdout line scripts and tests read to find the port.
    outln!("tollgate gateway listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tollgate_gateway::serve(gw, tollgate_control::router(control), listener, stop).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The control plane over the gateway's store and secret, telling the gateway about changes; the
/// binary serves its router beside the gateway's.
pub async fn control_plane(
    gw: &std::sync::Arc<tollgate_gateway::Gateway>,
) -> anyhow::Result<std::sync::Arc<tollgate_control::Control>> {
    Ok(tollgate_control::Control::new_with_clock(
        &gw.config,
        gw.store.clone(),
        gw.keyring.secret().clone(),
        gw.clone(),
        gw.clock.clone(),
    )
    .await?)
}
