//! `tollgate simulate`: the simulated upstream as a standalone server.

use crate::{LogFormat, init_logging, shutdown_signal};
use anyhow::{Context, bail};
use std::io::Write;
use std::time::Duration;
use tollgate_simulator::{SimConfig, Simulator};

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Listen address. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4010")]
    pub listen: std::net::SocketAddr,
    /// Delay before a complete answer, ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay before the first streamed event, ms.
    #[arg(long, default_value_t = 0)]
    pub ttft_ms: u64,
    /// Pace of streamed tokens; 0 sends them at once.
    #[arg(long, default_value_t = 0.0)]
    pub tokens_per_second: f64,
    /// Share of requests answered with --error-status (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status of injected errors.
    #[arg(long, default_value_t = 500)]
    pub error_status: u16,
    /// `Retry-After` seconds sent with injected errors.
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Message of injected errors.
    #[arg(long, default_value = "simulated upstream error")]
    pub error_message: String,
    /// Share of streams cut halfway without their end marker (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
    /// Share of streams that stop halfway with an error event carrying --error-message (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub stream_error_rate: f64,
    /// Do not report usage.
    #[arg(long)]
    pub no_usage: bool,
    /// Input tokens reported as prompt-cache reads.
    #[arg(long, default_value_t = 0)]
    pub cached_tokens: u64,
    /// Input tokens reported as prompt-cache writes (Anthropic).
    #[arg(long, default_value_t = 0)]
    pub cache_write_tokens: u64,
    /// Output tokens reported as reasoning.
    #[arg(long, default_value_t = 0)]
    pub reasoning_tokens: u64,
    /// Seed for the generated words.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Typical answer length in tokens when the client sets no cap.
    #[arg(long, default_value_t = 24)]
    pub output_tokens: u32,
    /// Require this API key (Bearer, x-api-key or api-key).
    #[arg(long, env = "TOLLGATE_SIM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Answer with the last user message's text (to see what the gateway lets through).
    #[arg(long)]
    pub echo: bool,
    /// Plant a bias: prompts containing one of these words (comma-separated; names, usually)
    /// get `--bias-answer` (for fairness probes).
    #[arg(long, value_delimiter = ',')]
    pub bias_words: Vec<String>,
    /// The answer the bias words get.
    #[arg(long, requires = "bias_words")]
    pub bias_answer: Option<String>,
    /// The answer every other prompt gets while a bias is planted (default: the usual text).
    #[arg(long, requires = "bias_words")]
    pub bias_otherwise: Option<String>,
}

impl SimulateArgs {
    /// The simulator's knobs, checked.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        for (name, v) in [
            ("--error-rate", self.error_rate),
            ("--truncate-rate", self.truncate_rate),
            ("--stream-error-rate", self.stream_error_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        if !(self.tokens_per_second >= 0.0 && self.tokens_per_second.is_finite()) {
            bail!("--tokens-per-second must be 0 or more");
        }
        if !(100..=599).contains(&self.error_status) {
            bail!(
                "--error-status must be an HTTP status (100-599), got {}",
                self.error_status
            );
        }
        Ok(SimConfig {
            latency: Duration::from_millis(self.latency_ms),
            ttft: Duration::from_millis(self.ttft_ms),
            tokens_per_second: self.tokens_per_second,
            error_rate: self.error_rate,
            error_status: self.error_status,
            retry_after: self.retry_after,
            error_message: self.error_message.clone(),
            truncate_rate: self.truncate_rate,
            stream_error_rate: self.stream_error_rate,
            usage: !self.no_usage,
            cached_tokens: self.cached_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
            seed: self.seed,
            default_output_tokens: self.output_tokens.max(9),
            api_key: self.api_key.clone(),
            echo: self.echo,
            bias: match (self.bias_words.is_empty(), &self.bias_answer) {
                (true, _) => None,
                (false, None) => bail!("--bias-words needs --bias-answer"),
                (false, Some(answer)) => Some(tollgate_simulator::Bias {
                    words: self
                        .bias_words
                        .iter()
                        .map(|w| w.trim().to_string())
                        .collect(),
                    answer: answer.clone(),
                    otherwise: self.bias_otherwise.clone(),
                }),
            },
        })
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    let cfg = args.to_config()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let stop = shutdown_signal();
    outln!("tollgate simulator listening on http://{addr}/v1");
    let _ = std::io::stdout().flush();
    Simulator::new(cfg).serve(listener, stop).await?;
    Ok(())
}
