//! Deterministic "model output": words picked by a seeded generator, tool calls with arguments
//! shaped by the tool's JSON schema, JSON answers for JSON modes, stop sequences and length caps.

use serde_json::{Map, Value, json};

const WORDS: &[&str] = &[
    "the",
    "gateway",
    "routes",
    "every",
    "request",
    "to",
    "a",
    "model",
    "with",
    "care",
    "and",
    "measures",
    "cost",
    "value",
    "policy",
    "pods",
    "build",
    "pilots",
    "that",
    "reach",
    "production",
    "teams",
    "share",
    "patterns",
    "budgets",
    "hold",
    "limits",
    "stay",
    "fair",
    "data",
    "is",
    "masked",
    "ledger",
    "records",
    "outcomes",
    "answers",
    "quickly",
    "safely",
    "in",
    "one",
    "place",
    "for",
    "all",
    "users",
    "of",
    "this",
    "organization",
    "today",
];

/// SplitMix64: tiny, fast, and good enough to pick words.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// FNV-1a, to turn request content into a seed.
pub(crate) fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A rough token count: one per four characters, at least one per message.
pub(crate) fn count_tokens(texts: &[String]) -> u64 {
    texts
        .iter()
        .map(|t| (t.chars().count() as u64).div_ceil(4) + 3)
        .sum::<u64>()
        .max(1)
}

/// How Tollgate's `llm-rubric` judge prompt starts (its system message).
pub(crate) const JUDGE_PROMPT_START: &str = "You grade an output against a rubric.";

/// The simulator's verdict on a judge prompt (`<Output>…</Output>` and `<Rubric>…</Rubric>` in
/// the user message): the share of the rubric's words of four letters or more that the output
/// contains (any case) is the score; it passes from one half up. Deterministic, so a suite's
/// rubric can be written to pass or to fail against the simulator.
pub(crate) fn judge_verdict(user: &str) -> String {
    let between = |open: &str, close: &str| -> String {
        user.split_once(open)
            .and_then(|(_, rest)| rest.rsplit_once(close))
            .map(|(inside, _)| inside.trim().to_lowercase())
            .unwrap_or_default()
    };
    let output = between("<Output>", "</Output>");
    let rubric = between("<Rubric>", "</Rubric>");
    let words: Vec<&str> = rubric
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .collect();
    let found = words.iter().filter(|w| output.contains(**w)).count();
    let score = if words.is_empty() {
        1.0
    } else {
        found as f64 / words.len() as f64
    };
    json!({
        "reason": format!("{found} of {} rubric words are in the output", words.len()),
        "pass": score >= 0.5,
        "score": (score * 1000.0).round() / 1000.0,
    })
    .to_string()
}

/// What the model should do.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    /// Seed from the content, the client's seed and the simulator's seed.
    pub seed: u64,
    /// Output cap from the client.
    pub cap: Option<u32>,
    /// Length when uncapped.
    pub default_len: u32,
    /// Stop sequences.
    pub stops: Vec<String>,
    /// Call this tool (name, JSON schema).
    pub tool: Option<(String, Value)>,
    /// Answer in JSON; `Some(schema)` for a schema.
    pub json: Option<Option<Value>>,
    /// Answer with this text, in pieces of three characters.
    pub echo: Option<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCalls,
}

/// One generated answer.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// Text pieces, one per token, in order (empty for a tool call).
    pub pieces: Vec<String>,
    /// A tool call: (id, name, JSON arguments).
    pub tool_call: Option<(String, String, String)>,
    /// Why it ended.
    pub finish: Finish,
}

impl Output {
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// Output tokens this answer claims.
    pub(crate) fn tokens(&self) -> u64 {
        match &self.tool_call {
            Some((_, _, args)) => (args.len() as u64).div_ceil(4).max(1),
            None => self.pieces.len() as u64,
        }
    }
}

/// Generates choice `index` of an answer.
pub(crate) fn generate(ask: &Ask, index: u32) -> Output {
    let mut rng = Rng::new(ask.seed ^ (u64::from(index) << 32));
    if let Some(text) = &ask.echo {
        let chars: Vec<char> = text.chars().collect();
        return Output {
            pieces: chars.chunks(3).map(|c| c.iter().collect()).collect(),
            tool_call: None,
            finish: Finish::Stop,
        };
    }
    if let Some((name, schema)) = &ask.tool {
        let args = value_for_schema(schema, &mut rng, 0).to_string();
        let id = format!("call_{:016x}", rng.next_u64());
        return Output {
            pieces: Vec::new(),
            tool_call: Some((id, name.clone(), args)),
            finish: Finish::ToolCalls,
        };
    }
    // Uncapped answers vary between half the typical length and the typical length.
    let typical = ask.default_len.max(2);
    let wanted = typical / 2 + rng.below(u64::from(typical - typical / 2 + 1)) as u32;
    let (len, capped) = match ask.cap {
        Some(cap) if cap <= wanted => (cap, true),
        _ => (wanted, false),
    };
    let mut pieces: Vec<String> = if let Some(schema) = &ask.json {
        let value = match schema {
            Some(s) => value_for_schema(s, &mut rng, 0),
            None => json!({"answer": words(&mut rng, 6).join(" ")}),
        };
        value
            .to_string()
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    } else {
        words(&mut rng, len as usize)
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    capitalize(w)
                } else {
                    format!(" {w}")
                }
            })
            .collect()
    };
    let mut finish = if capped && ask.json.is_none() {
        Finish::Length
    } else {
        Finish::Stop
    };
    if !ask.stops.is_empty() {
        let text: String = pieces.concat();
        if let Some(cut) = ask
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            let mut kept = Vec::new();
            let mut at = 0;
            for p in pieces {
                if at + p.len() <= cut {
                    at += p.len();
                    kept.push(p);
                } else {
                    if at < cut {
                        kept.push(p[..cut - at].to_string());
                    }
                    break;
                }
            }
            pieces = kept;
            finish = Finish::Stop;
        }
    }
    if !pieces.is_empty()
        && ask.json.is_none()
        && finish == Finish::Stop
        && let Some(last) = pieces.last_mut()
    {
        last.push('.');
    }
    Output {
        pieces,
        tool_call: None,
        finish,
    }
}

fn words(rng: &mut Rng, n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect()
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A value that satisfies the common parts of a JSON schema.
pub(crate) fn value_for_schema(schema: &Value, rng: &mut Rng, depth: u32) -> Value {
    if depth > 6 {
        return Value::Null;
    }
    if let Some(e) = schema
        .get("enum")
        .and_then(|e| e.as_array())
        .filter(|e| !e.is_empty())
    {
        return e[rng.below(e.len() as u64) as usize].clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (k, v) in props {
                    out.insert(k.clone(), value_for_schema(v, rng, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            Value::Array(
                (0..2)
                    .map(|_| value_for_schema(&item, rng, depth + 1))
                    .collect(),
            )
        }
        "integer" => json!(rng.below(100)),
        "number" => json!(rng.below(1000) as f64 / 10.0),
        "boolean" => json!(rng.below(2) == 1),
        "null" => Value::Null,
        _ => json!(words(rng, 2).join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask {
        Ask {
            seed: 7,
            cap: None,
            default_len: 24,
            stops: vec![],
            tool: None,
            json: None,
            echo: None,
        }
    }

    #[test]
    fn same_seed_same_words() {
        assert_eq!(generate(&ask(), 0).text(), generate(&ask(), 0).text());
        assert_ne!(generate(&ask(), 0).text(), generate(&ask(), 1).text());
    }

    #[test]
    fn caps_and_stops() {
        let capped = generate(
            &Ask {
                cap: Some(3),
                ..ask()
            },
            0,
        );
        assert_eq!((capped.pieces.len(), capped.finish), (3, Finish::Length));
        let full = generate(&ask(), 0).text();
        let stop = full.split(' ').nth(2).unwrap().to_string();
        let stopped = generate(
            &Ask {
                stops: vec![stop.clone()],
                ..ask()
            },
            0,
        );
        assert!(!stopped.text().contains(&stop));
        assert_eq!(stopped.finish, Finish::Stop);
    }

    #[test]
    fn tool_arguments_follow_the_schema() {
        let schema = json!({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"unit":{"enum":["c","f"]}}});
        let out = generate(
            &Ask {
                tool: Some(("weather".into(), schema)),
                ..ask()
            },
            0,
        );
        let (_, name, args) = out.tool_call.unwrap();
        let v: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(name, "weather");
        assert!(v["city"].is_string() && v["days"].is_u64());
        assert!(v["unit"] == "c" || v["unit"] == "f");
    }

    #[test]
    fn json_mode_answers_parse() {
        let out = generate(
            &Ask {
                json: Some(None),
                ..ask()
            },
            0,
        );
        let v: Value = serde_json::from_str(&out.text()).unwrap();
        assert!(v["answer"].is_string());
    }
}
