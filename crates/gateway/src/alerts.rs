//! Alerts: every alert goes to the log, and to each configured webhook as a JSON POST, retried
//! with backoff (4 tries: after 0.2, 0.4 and 0.8 s). Sending happens on a task of its own, so a
//! slow or failing receiver never holds up a request.
//!
//! Kinds so far: `budget_threshold` (a budget crossed 50, 80 or 100 % in its period) and
//! `unpriced_model` (the first request served by a deployment without a price, once per process).

use serde::Serialize;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tollgate_config::Secret;

/// One alert, as webhooks receive it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// `budget_threshold`, `unpriced_model`.
    pub kind: &'static str,
    /// RFC 3339.
    pub at: String,
    /// For a person.
    pub message: String,
    /// Machine-readable details (never a key, a prompt or a response).
    pub details: serde_json::Value,
}

impl Alert {
    /// An alert of `kind` now.
    pub fn new(kind: &'static str, message: String, details: serde_json::Value) -> Alert {
        Alert {
            kind,
            at: tollgate_types::time::rfc3339(tollgate_store::now_ms()),
            message,
            details,
        }
    }
}

/// Counters of the webhook sender.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alerts raised.
    pub raised: AtomicU64,
    /// Webhook deliveries that succeeded.
    pub delivered: AtomicU64,
    /// Webhook deliveries given up after every retry.
    pub failed: AtomicU64,
}

/// The alert channel.
#[derive(Debug)]
pub struct Alerter {
    tx: Option<mpsc::Sender<Alert>>,
    stats: Arc<AlertStats>,
    unpriced_seen: Mutex<HashSet<(usize, usize)>>,
}

impl Alerter {
    /// Starts the sender task when there are webhooks.
    pub fn start(webhooks: Vec<(String, Option<Secret>)>, http: reqwest::Client) -> Arc<Alerter> {
        let stats = Arc::new(AlertStats::default());
        let tx = (!webhooks.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(send_loop(webhooks, http, rx, stats.clone()));
            tx
        });
        Arc::new(Alerter {
            tx,
            stats,
            unpriced_seen: Mutex::new(HashSet::new()),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &AlertStats {
        &self.stats
    }

    /// Logs the alert and queues it for the webhooks.
    pub fn raise(&self, alert: Alert) {
        self.stats.raised.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = alert.kind, details = %alert.details, "alert: {}", alert.message);
        if let Some(tx) = &self.tx
            && tx.try_send(alert).is_err()
        {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Alerts once per deployment that it served a request without a price.
    pub fn unpriced(&self, route: usize, deployment: usize, route_name: &str, model: &str) {
        let first = self
            .unpriced_seen
            .lock()
            .map(|mut s| s.insert((route, deployment)))
            .unwrap_or(false);
        if first {
            self.raise(Alert::new(
                "unpriced_model",
                format!("route `{route_name}` served a request with `{model}`, which has no price: its cost is unknown until a `price:` is added to the deployment"),
                serde_json::json!({"route": route_name, "model": model}),
            ));
        }
    }
}

async fn send_loop(
    webhooks: Vec<(String, Option<Secret>)>,
    http: reqwest::Client,
    mut rx: mpsc::Receiver<Alert>,
    stats: Arc<AlertStats>,
) {
    while let Some(alert) = rx.recv().await {
        let body = serde_json::to_vec(&alert).unwrap_or_default();
        for (url, secret) in &webhooks {
            let mut wait = Duration::from_millis(200);
            let mut delivered = false;
            for attempt in 1..=4 {
                let mut req = http
                    .post(url)
                    .header("content-type", "application/json")
                    .timeout(Duration::from_secs(5))
                    .body(body.clone());
                if let Some(s) = secret {
                    req = req.bearer_auth(s.expose());
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        delivered = true;
                        break;
                    }
                    Ok(r) => tracing::debug!(
                        status = r.status().as_u16(),
                        attempt,
                        "alert webhook refused the alert"
                    ),
                    Err(e) => {
                        tracing::debug!(error = %e.without_url(), attempt, "alert webhook unreachable")
                    }
                }
                if attempt < 4 {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            if delivered {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(kind = alert.kind, "alert webhook failed after 4 tries");
            }
        }
    }
}
