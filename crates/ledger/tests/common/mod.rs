//! What the ledger's tests share.

use tollgate_store::{RequestRecord, new_id, now_ms};

/// A priced request record, its figures varying with `i`.
pub fn rec(i: u64) -> RequestRecord {
    RequestRecord {
        id: new_id("rec"),
        request_id: format!("req_{i}"),
        at: now_ms(),
        key_id: "key_1".into(),
        use_case_id: "uc_1".into(),
        pod_id: "pod_1".into(),
        route: "m".into(),
        status: 200,
        outcome: "ok".into(),
        input_tokens: 10 + i % 7,
        output_tokens: 20,
        cost_nano_usd: Some(1_000 + i),
        price_id: Some("cat:test:sim:gpt-4o-mini".into()),
        cost_split: [400 + i, 0, 0, 600, 0],
        ..Default::default()
    }
}
