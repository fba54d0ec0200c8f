//! Text measures the assertions share: edit distance, cosine similarity, JSON found inside text.

use serde_json::Value;

/// The Levenshtein distance between `a` and `b`, in characters (not bytes).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() {
        return b.len();
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if ca == cb {
                diag
            } else {
                1 + diag.min(up).min(row[j])
            };
            diag = up;
        }
    }
    row[b.len()]
}

/// The cosine similarity of two embeddings; an error when their lengths differ or one is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f64, String> {
    if a.len() != b.len() {
        return Err(format!(
            "the embeddings have different lengths ({} and {})",
            a.len(),
            b.len()
        ));
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return Err("an embedding is all zeros".into());
    }
    Ok(dot / (na.sqrt() * nb.sqrt()))
}

/// Every JSON object or array found in `text`, left to right, not overlapping (prose around
/// them, or a fenced code block, is skipped).
pub fn json_values(text: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'{' || bytes[i] == b'[' {
            let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            if let Some(Ok(v)) = stream.next() {
                let used = stream.byte_offset();
                if matches!(v, Value::Object(_) | Value::Array(_)) {
                    found.push(v);
                    i += used.max(1);
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

pub use tollgate_types::text::clip;

/// Nano-USD as an exact decimal dollar amount (`0.000123`), trailing zeros dropped.
pub fn usd(nanos: u64) -> String {
    let whole = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:09}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_characters() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("héllo", "hello"), 1);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).unwrap().abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]).unwrap() - 0.5f64.sqrt()).abs() < 1e-9);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
        assert!(cosine(&[0.0, 0.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn json_found_in_prose() {
        let v = json_values("Sure! ```json\n{\"a\": 1}\n``` and [1, 2] but not {broken");
        assert_eq!(
            v,
            vec![serde_json::json!({"a": 1}), serde_json::json!([1, 2])]
        );
        assert!(json_values("no json here: 42").is_empty());
    }

    #[test]
    fn usd_is_exact() {
        assert_eq!(usd(0), "0");
        assert_eq!(usd(1), "0.000000001");
        assert_eq!(usd(1_500_000_000), "1.5");
        assert_eq!(usd(123_000), "0.000123");
    }
}
