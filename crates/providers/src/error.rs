//! [`ProviderError`]: what can go wrong talking to an upstream, and what the router should do
//! about it ([`ErrorClass`]).

use std::time::Duration;

/// What the router does after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry the same deployment (after backoff), then move on.
    Retry,
    /// This deployment cannot serve the request, another might: move on without retrying.
    NextDeployment,
    /// The request itself is at fault; no other deployment will do better. Answer now.
    Fatal,
}

/// An upstream failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The TCP or TLS connection could not be made (refused, DNS, reset before a response).
    #[error("cannot connect to the provider: {0}")]
    Connect(String),
    /// The attempt took longer than its timeout.
    #[error("the provider did not answer in time")]
    Timeout,
    /// A stream went on longer than its route allows in all (`stream_timeout_ms`).
    #[error("the stream went on longer than the route allows ({} ms in all) and was cut", .0.as_millis())]
    StreamTooLong(Duration),
    /// The provider answered with an error status.
    #[error("the provider answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The provider's error message, if it sent one.
        message: String,
        /// `Retry-After` / `retry-after-ms`, if sent.
        retry_after: Option<Duration>,
    },
    /// A stream ended before its end marker (`[DONE]`, `message_stop`).
    #[error("the provider's stream ended before it was complete")]
    Truncated,
    /// An error event inside a stream.
    #[error("the provider reported an error inside the stream: {0}")]
    StreamError(String),
    /// The answer could not be understood.
    #[error("the provider's answer could not be read: {0}")]
    InvalidResponse(String),
    /// Sending the request or reading the answer failed mid-way.
    #[error("the request to the provider failed: {0}")]
    Transport(String),
    /// This provider cannot do what was asked (embeddings on Anthropic, `n` > 1, ...).
    #[error("{0}")]
    Unsupported(String),
}

impl ProviderError {
    /// What the router should do next.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Connect(_)
            | ProviderError::Timeout
            | ProviderError::StreamTooLong(_)
            | ProviderError::Truncated
            | ProviderError::StreamError(_)
            | ProviderError::InvalidResponse(_)
            | ProviderError::Transport(_) => ErrorClass::Retry,
            ProviderError::Unsupported(_) => ErrorClass::NextDeployment,
            ProviderError::Status { status, .. } => match status {
                408 | 409 | 425 | 429 | 500..=599 => ErrorClass::Retry,
                // The gateway's own credentials or entitlement at this provider are at fault, or
                // the provider does not know the model: another deployment may be fine.
                401 | 403 | 404 => ErrorClass::NextDeployment,
                // An informational or redirect answer where an API answer was due: this
                // deployment is misconfigured (a URL that moved, a proxy's login page), and
                // asking it again will not change that; another deployment may be fine.
                100..=399 => ErrorClass::NextDeployment,
                _ => ErrorClass::Fatal,
            },
        }
    }

    /// A short stable name for metrics and the ledger (`connect`, `timeout`, `status_429`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Connect(_) => "connect",
            ProviderError::Timeout => "timeout",
            ProviderError::StreamTooLong(_) => "stream_timeout",
            ProviderError::Status { status, .. } => match status {
                429 => "status_429",
                100..=399 => "status_unexpected",
                400..=499 => "status_4xx",
                _ => "status_5xx",
            },
            ProviderError::Truncated => "truncated",
            ProviderError::StreamError(_) => "stream_error",
            ProviderError::InvalidResponse(_) => "invalid_response",
            ProviderError::Transport(_) => "transport",
            ProviderError::Unsupported(_) => "unsupported",
        }
    }

    /// The same error with each of `secrets` blanked (`***`) out of its text, so a provider that
    /// echoes a credential back never shows it to a client: every occurrence, in any letter
    /// case, and any run of at least its first [`REDACT_PREFIX`] characters (a provider may show
    /// a key cut short, `sk-live-1234…`).
    pub fn redact(self, secrets: &[String]) -> ProviderError {
        self.map_text(|text| redact_text(text, secrets))
    }

    /// The same error with `f` applied to each text it carries (what a client may be told).
    pub fn map_text(self, f: impl Fn(String) -> String) -> ProviderError {
        match self {
            ProviderError::Status {
                status,
                message,
                retry_after,
            } => ProviderError::Status {
                status,
                message: f(message),
                retry_after,
            },
            ProviderError::StreamError(m) => ProviderError::StreamError(f(m)),
            ProviderError::InvalidResponse(m) => ProviderError::InvalidResponse(f(m)),
            ProviderError::Transport(m) => ProviderError::Transport(f(m)),
            ProviderError::Connect(m) => ProviderError::Connect(f(m)),
            ProviderError::Unsupported(m) => ProviderError::Unsupported(f(m)),
            other => other,
        }
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        // The URL is taken out first (reqwest's Display can include it); the causes under it
        // (hyper's, the socket's) name no URL and no header.
        let (timeout, connect, body) =
            (e.is_timeout(), e.is_connect(), e.is_decode() || e.is_body());
        let detail = crate::transport::chain(&e.without_url());
        if timeout {
            ProviderError::Timeout
        } else if connect {
            ProviderError::Connect(detail)
        } else if body {
            ProviderError::InvalidResponse(detail)
        } else {
            ProviderError::Transport(detail)
        }
    }
}

/// Reads `retry-after-ms` or `retry-after` (seconds; HTTP dates are ignored).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Turns an error response into [`ProviderError::Status`], reading at most 64 KiB of its body.
///
/// The body of a 401 or 403 is never kept: it is about the gateway's own credentials at the
/// provider (some providers echo the key they were sent), never something the client can act on.
pub(crate) async fn status_error(resp: crate::transport::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    if matches!(status, 401 | 403) {
        return ProviderError::Status {
            status,
            message: "the provider refused the gateway's credentials for this deployment".into(),
            retry_after,
        };
    }
    if status < 200 || (300..400).contains(&status) {
        let message = if status < 200 {
            "an informational status where an answer was due"
        } else {
            "a redirect, which the gateway never follows (a provider's API does not move)"
        };
        return ProviderError::Status {
            status,
            message: message.into(),
            retry_after,
        };
    }
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            // OpenAI: {"error":{"message"}}; Anthropic: {"type":"error","error":{"message"}};
            // some servers: {"error":"text"} or {"message":"text"}.
            let e = v.get("error").unwrap_or(&v);
            e.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            text.chars().take(200).collect()
        });
    ProviderError::Status {
        status,
        message,
        retry_after,
    }
}

/// Characters of a secret that, shown in a row, count as showing it.
pub const REDACT_PREFIX: usize = 12;

/// `text` with every case-insensitive occurrence of each secret, or of a run of at least its
/// first [`REDACT_PREFIX`] characters, replaced by `***` — and the same for a secret written in
/// hex, in base64 (a run of base64 whose decoding shows it becomes `***`), percent-encoded or in
/// base64 wrapped over lines (then the whole text is withheld: its encoded spans cannot be cut
/// out one by one reliably).
pub fn redact_text(text: String, secrets: &[String]) -> String {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut text = text;
    for secret in &secrets {
        text = blank_plain(text, secret, secret.len().min(REDACT_PREFIX));
        // In hex (either case): two characters a byte.
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        text = blank_plain(text, &hex, 2 * secret.len().min(REDACT_PREFIX));
    }
    const WITHHELD: &str = "*** (withheld: it showed a credential of the gateway)";
    if text.contains('%') {
        let decoded = percent_decoded(&text);
        if secrets.iter().any(|s| shows(decoded.as_bytes(), s)) {
            return WITHHELD.into();
        }
    }
    let text = blank_base64(text, &secrets);
    // Written across lines or blanks (a key cut by a line break, base64 wrapped as MIME or PEM
    // wrap it, hex in pairs or `\x` escapes): read with every blank and hex separator left out.
    if text
        .bytes()
        .any(|c| c.is_ascii_whitespace() || c == b':' || c == b'\\')
    {
        let joined: String = text.split_ascii_whitespace().collect();
        let hex_joined = joined.replace("\\x", "").replace(':', "");
        let shown = secrets.iter().any(|secret| {
            let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
            let min = secret.len().min(REDACT_PREFIX);
            let needle = &hex.as_bytes()[..2 * min];
            shows(joined.as_bytes(), secret)
                || hex_joined
                    .as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        });
        if shown || blank_base64(joined.clone(), &secrets) != joined {
            return WITHHELD.into();
        }
    }
    text
}

/// Whether `bytes` show `secret` (or its first [`REDACT_PREFIX`] characters), in any ASCII case.
fn shows(bytes: &[u8], secret: &str) -> bool {
    let n = secret.as_bytes();
    let min = n.len().min(REDACT_PREFIX);
    bytes
        .windows(min)
        .any(|w| w.eq_ignore_ascii_case(&n[..min]))
}

/// `text` with every case-insensitive run of at least the first `min` characters of `secret`
/// replaced by `***`.
fn blank_plain(text: String, secret: &str, min: usize) -> String {
    let needle = secret.to_ascii_lowercase();
    let min = min.min(needle.len());
    let lower = text.to_ascii_lowercase();
    if !lower.contains(&needle[..min]) {
        return text;
    }
    let (t, n) = (lower.as_bytes(), needle.as_bytes());
    let mut out = String::with_capacity(text.len());
    let (mut i, mut kept) = (0, 0);
    while i < t.len() {
        let run = t[i..].iter().zip(n).take_while(|(a, b)| a == b).count();
        if run >= min {
            // ASCII lower-casing keeps byte offsets, and a secret's characters are ASCII.
            out.push_str(&text[kept..i]);
            out.push_str("***");
            i += run;
            kept = i;
        } else {
            i += 1;
        }
    }
    if kept > 0 && text.is_char_boundary(kept) {
        out.push_str(&text[kept..]);
        return out;
    }
    text
}

/// `text` with `%XX` escapes decoded (bytes that are not UTF-8 replaced).
fn percent_decoded(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with every run of base64 (either alphabet) that decodes to something showing a secret
/// replaced by `***`.
fn blank_base64(text: String, secrets: &[&str]) -> String {
    use base64::Engine;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, lenient),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient),
    ];
    let b = text.as_bytes();
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_' | b'=');
    let mut cuts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_b64(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_b64(b[i]) {
            i += 1;
            // Padding ends a run.
            if b[i - 1] == b'=' {
                while i < b.len() && b[i] == b'=' {
                    i += 1;
                }
                break;
            }
        }
        // Four characters of base64 carry three bytes: shorter runs cannot show a secret.
        if i - start < 16 {
            continue;
        }
        let run = text[start..i].trim_end_matches('=');
        // The run may start mid-quantum when it follows other base64 text: try each alignment.
        let found = (0..4).any(|skip| {
            let body = &run[skip.min(run.len())..];
            // A single character left over cannot be decoded; it carries no whole byte.
            let body = if body.len() % 4 == 1 {
                &body[..body.len() - 1]
            } else {
                body
            };
            engines.iter().any(|e| {
                e.decode(body)
                    .is_ok_and(|d| secrets.iter().any(|s| shows(&d, s)))
            })
        });
        if found {
            cuts.push((start, i));
        }
    }
    if cuts.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut kept = 0;
    for (a, z) in cuts {
        out.push_str(&text[kept..a]);
        out.push_str("***");
        kept = z;
    }
    out.push_str(&text[kept..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> ProviderError {
        ProviderError::Status {
            status: s,
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classes() {
        assert_eq!(status(429).class(), ErrorClass::Retry);
        assert_eq!(status(503).class(), ErrorClass::Retry);
        assert_eq!(status(529).class(), ErrorClass::Retry);
        assert_eq!(status(401).class(), ErrorClass::NextDeployment);
        assert_eq!(status(400).class(), ErrorClass::Fatal);
        assert_eq!(status(422).class(), ErrorClass::Fatal);
        // A redirect (never followed) or an informational answer: move on, named for what it is.
        for s in [101, 301, 302, 307, 308] {
            assert_eq!(status(s).class(), ErrorClass::NextDeployment, "{s}");
            assert_eq!(status(s).kind(), "status_unexpected", "{s}");
        }
        assert_eq!(status(502).kind(), "status_5xx");
        assert_eq!(ProviderError::Timeout.class(), ErrorClass::Retry);
        assert_eq!(
            ProviderError::Unsupported("x".into()).class(),
            ErrorClass::NextDeployment
        );
    }

    #[test]
    fn redact_replaces_every_secret_in_every_text() {
        let secrets = vec!["sk-live-123456".to_string(), String::new()];
        let e = ProviderError::Status {
            status: 400,
            message: "bad key sk-live-123456 (sk-live-123456)".into(),
            retry_after: None,
        }
        .redact(&secrets);
        assert_eq!(
            e.to_string(),
            "the provider answered 400: bad key *** (***)"
        );
        let e = ProviderError::StreamError("echo sk-live-123456".into()).redact(&secrets);
        assert!(!e.to_string().contains("sk-live"), "{e}");
        // Another letter case, and the key cut short after 12 characters: blanked too.
        let e = ProviderError::StreamError("key SK-LIVE-123456 or sk-live-1234… é".into())
            .redact(&secrets);
        assert_eq!(
            e.to_string(),
            "the provider reported an error inside the stream: key *** or ***… é"
        );
        // Written in base64 (padded or not, either alphabet, at any alignment inside a longer
        // run) or percent-encoded: blanked as well.
        use base64::Engine;
        let std = base64::engine::general_purpose::STANDARD;
        for shown in [
            std.encode("sk-live-123456"),
            std.encode("token=sk-live-123456;"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"ab sk-live-123456 \xff"),
            format!("QUJ{}", std.encode("xsk-live-123456")),
        ] {
            let e = ProviderError::StreamError(format!("got {shown} here")).redact(&secrets);
            assert_eq!(
                e.to_string(),
                "the provider reported an error inside the stream: got *** here"
            );
        }
        let e = ProviderError::StreamError("got c2stbGl2ZS0xMjM0NTZ4 sk%2Dlive%2D123456".into())
            .redact(&secrets);
        assert_eq!(
            e.to_string(),
            "the provider reported an error inside the stream: *** (withheld: it showed a credential of the gateway)"
        );
        // Base64 of something else, and percent escapes of something else, are left alone.
        let e = ProviderError::StreamError(format!(
            "see {} or a%20b",
            std.encode("an ordinary message")
        ))
        .redact(&secrets);
        assert!(
            e.to_string()
                .ends_with("see YW4gb3JkaW5hcnkgbWVzc2FnZQ== or a%20b"),
            "{e}"
        );
        // A short run (16 characters: 12 bytes of the secret's start), a run with a stray
        // character at its end, and the standard alphabet's `+` and `/` (from the mutation review).
        for shown in [
            std.encode("sk-live-1234"),
            std.encode("xsk-live-123456") + "A",
            std.encode(">>> sk-live-123456 ???"),
        ] {
            let e = ProviderError::StreamError(format!("got {shown} here")).redact(&secrets);
            assert_eq!(
                e.to_string(),
                "the provider reported an error inside the stream: got *** here",
                "{shown}"
            );
        }
        // Every kind of error that carries a text is blanked.
        for e in [
            ProviderError::Transport("key sk-live-123456".into()),
            ProviderError::Connect("key sk-live-123456".into()),
            ProviderError::InvalidResponse("key sk-live-123456".into()),
            ProviderError::Unsupported("key sk-live-123456".into()),
        ] {
            let shown = e.redact(&secrets).to_string();
            assert!(shown.ends_with("key ***"), "{shown}");
        }
        // In hex, either case, whole or its first 12 bytes: blanked.
        let hex: String = b"sk-live-123456"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for shown in [hex.clone(), hex.to_uppercase(), hex[..24].to_string()] {
            let e = ProviderError::StreamError(format!("got {shown} here")).redact(&secrets);
            assert_eq!(
                e.to_string(),
                "the provider reported an error inside the stream: got *** here",
                "{shown}"
            );
        }
        // 11 bytes of it in hex are not enough.
        let e = ProviderError::StreamError(format!("got {} here", &hex[..22])).redact(&secrets);
        assert!(e.to_string().contains(&hex[..22]), "{e}");
        // Base64 wrapped over lines, or cut by blanks: the whole text withheld.
        let b64 = std.encode("the key is sk-live-123456 as given");
        for shown in [
            format!("{}\n{}", &b64[..20], &b64[20..]),
            format!("{}\r\n  {}", &b64[..17], &b64[17..]),
        ] {
            let e = ProviderError::StreamError(format!("got {shown} here")).redact(&secrets);
            assert_eq!(
                e.to_string(),
                "the provider reported an error inside the stream: *** (withheld: it showed a credential of the gateway)",
                "{shown:?}"
            );
        }
        // Cut by a line break, hex in pairs or escapes, hex wrapped over lines: withheld.
        for shown in [
            "key sk-live-\n123456 rejected".to_string(),
            hex.as_bytes()
                .chunks(2)
                .map(|p| String::from_utf8_lossy(p).to_string())
                .collect::<Vec<_>>()
                .join(":"),
            hex.as_bytes()
                .chunks(2)
                .map(|p| format!("\\x{}", String::from_utf8_lossy(p)))
                .collect::<String>(),
            format!("{}\n{}", &hex[..10], &hex[10..]),
            hex.as_bytes()
                .chunks(2)
                .map(|p| String::from_utf8_lossy(p).to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ] {
            let e = ProviderError::StreamError(format!("got {shown} here")).redact(&secrets);
            assert_eq!(
                e.to_string(),
                "the provider reported an error inside the stream: *** (withheld: it showed a credential of the gateway)",
                "{shown:?}"
            );
        }
        // Ordinary words around a secret's base64 are not mistaken for it.
        let e =
            ProviderError::StreamError("rate limit reached\nretry later".into()).redact(&secrets);
        assert!(
            e.to_string().ends_with("rate limit reached\nretry later"),
            "{e}"
        );
        // 11 characters of it are not enough to tell.
        let e = ProviderError::StreamError("sk-live-123".into()).redact(&secrets);
        assert_eq!(
            e.to_string(),
            "the provider reported an error inside the stream: sk-live-123"
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut d = http::HeaderMap::new();
        d.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&d), None);
    }
}
