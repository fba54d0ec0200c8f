//! A fake target for the eval tests: answers from a table, judges from a fixed verdict, embeds
//! text as letter counts (so cosine similarity is computable by hand).
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::type_complexity)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tollgate_eval::run::{Answer, ChatCall, Target};

pub struct Fake {
    /// Output per route (default: `output`).
    pub per_route: HashMap<String, String>,
    pub output: String,
    pub latency_ms: u64,
    pub cost: Option<u64>,
    /// What the judge route (`judge`) answers.
    pub verdict: String,
    /// Routes that fail.
    pub failing: Vec<String>,
    /// Every chat call: (route, rendered messages).
    pub calls: Mutex<Vec<(String, Vec<(String, String)>)>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Fake {
    pub fn answering(output: &str) -> Fake {
        Fake {
            per_route: HashMap::new(),
            output: output.to_string(),
            latency_ms: 120,
            cost: Some(2_500),
            verdict: r#"{"pass": true, "score": 0.9, "reason": "fine"}"#.into(),
            failing: Vec::new(),
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }
}

/// Letter counts a–z: "cat" and "act" are identical, "cat" and "dog" orthogonal.
pub fn letters(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 26];
    for c in text.to_lowercase().chars() {
        if c.is_ascii_lowercase() {
            v[(c as u8 - b'a') as usize] += 1.0;
        }
    }
    v
}

impl Target for Fake {
    async fn chat(&self, call: ChatCall<'_>) -> Result<Answer, String> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Let other cases start, so the bound on concurrency is what limits them.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push((
            call.route.to_string(),
            call.messages
                .iter()
                .map(|(r, t)| (r.as_str().to_string(), t.clone()))
                .collect(),
        ));
        if self.failing.iter().any(|r| r == call.route) {
            return Err(format!("route `{}` answered 503", call.route));
        }
        let text = if call.route == "judge" {
            self.verdict.clone()
        } else {
            self.per_route
                .get(call.route)
                .cloned()
                .unwrap_or_else(|| self.output.clone())
        };
        Ok(Answer {
            text,
            latency_ms: self.latency_ms,
            cost_nanos: self.cost,
            request_id: Some(format!("req_{}", call.route)),
            model: Some(format!("{}-model", call.route)),
        })
    }

    async fn embed(&self, _route: &str, text: &str) -> Result<(Vec<f32>, Option<u64>), String> {
        Ok((letters(text), Some(100)))
    }
}
