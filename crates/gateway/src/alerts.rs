//! Alerts: every alert goes to the log, and to each configured webhook as a JSON POST, retried
//! with backoff (4 tries: after 0.2, 0.4 and 0.8 s). Sending happens on a task of its own, so a
//! slow or failing receiver never holds up a request.
//!
//! Deliveries are signed as [Standard Webhooks](https://www.standardwebhooks.com/) (and Svix) sign
//! them, never by sending the secret: `webhook-id` (one per alert, the same on every retry and
//! every webhook), `webhook-timestamp` (Unix seconds of the attempt) and, when the webhook has a
//! secret, `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` (see
//! [`sign`]). The key is the secret's bytes, or for a `whsec_<base64>` secret the decoded bytes,
//! as the Standard Webhooks libraries read it.
//!
//! Kinds so far: `budget_threshold` (a budget crossed 50, 80 or 100 % in its period) and
//! `unpriced_model` (the first request served by a deployment without a price, once per process).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
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
    /// Told after each delivery, made or given up.
    progress: tollgate_types::progress::Progress,
}

impl AlertStats {
    /// Returns once `holds` is true of the counters, checked now and after each delivery.
    pub async fn until(&self, holds: impl Fn(&AlertStats) -> bool) {
        self.progress.until(|| holds(self)).await;
    }
}

/// The alert channel.
#[derive(Debug)]
pub struct Alerter {
    clock: tollgate_types::clock::Clock,
    tx: Option<mpsc::Sender<Alert>>,
    stats: Arc<AlertStats>,
    unpriced_seen: Mutex<HashSet<(usize, usize)>>,
}

impl Alerter {
    /// Starts the sender task when there are webhooks.
    pub fn start(
        webhooks: Vec<(String, Option<Secret>)>,
        http: reqwest::Client,
        clock: tollgate_types::clock::Clock,
    ) -> Arc<Alerter> {
        let stats = Arc::new(AlertStats::default());
        let tx = (!webhooks.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(send_loop(webhooks, http, rx, stats.clone()));
            tx
        });
        Arc::new(Alerter {
            clock,
            tx,
            stats,
            unpriced_seen: Mutex::new(HashSet::new()),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &AlertStats {
        &self.stats
    }

    /// Logs the alert (stamped with the gateway's clock) and queues it for the webhooks.
    pub fn raise(&self, mut alert: Alert) {
        alert.at = tollgate_types::time::rfc3339(self.clock.now_ms());
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

/// The HMAC key of a webhook secret: a `whsec_<base64>` secret (the Standard Webhooks form) is
/// the decoded bytes; any other secret is its own bytes.
pub fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` value of one delivery: `v1,` and the base64 HMAC-SHA256 under `key` of
/// `{id}.{timestamp}.{body}`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn send_loop(
    webhooks: Vec<(String, Option<Secret>)>,
    http: reqwest::Client,
    mut rx: mpsc::Receiver<Alert>,
    stats: Arc<AlertStats>,
) {
    let keys: Vec<Option<Vec<u8>>> = webhooks
        .iter()
        .map(|(_, s)| s.as_ref().map(|s| signing_key(s.expose())))
        .collect();
    while let Some(alert) = rx.recv().await {
        let body = serde_json::to_vec(&alert).unwrap_or_default();
        // One id per alert: receivers drop a retried delivery they already have.
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        for ((url, _), key) in webhooks.iter().zip(&keys) {
            let mut wait = Duration::from_millis(200);
            let mut delivered = false;
            for attempt in 1..=4 {
                // Each attempt is signed anew, with its own timestamp.
                let timestamp = tollgate_store::now_ms().div_euclid(1000);
                let mut req = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .timeout(Duration::from_secs(5))
                    .body(body.clone());
                if let Some(key) = key {
                    req = req.header("webhook-signature", sign(key, &id, timestamp, &body));
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
            stats.progress.changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries: a `whsec_` secret is base64.
    #[test]
    fn signs_as_standard_webhooks_do() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// Any other secret is its own bytes, and every part of the signed content counts.
    #[test]
    fn plain_secrets_are_their_bytes_and_every_part_is_signed() {
        assert_eq!(signing_key("hook-secret"), b"hook-secret");
        assert_eq!(signing_key("whsec_not base64!"), b"whsec_not base64!");
        let s = sign(b"k", "msg_1", 1_700_000_000, b"{}");
        assert!(s.starts_with("v1,") && s.len() == 3 + 44, "{s}");
        for other in [
            sign(b"K", "msg_1", 1_700_000_000, b"{}"),
            sign(b"k", "msg_2", 1_700_000_000, b"{}"),
            sign(b"k", "msg_1", 1_700_000_001, b"{}"),
            sign(b"k", "msg_1", 1_700_000_000, b"{ }"),
        ] {
            assert_ne!(s, other);
        }
    }
}
