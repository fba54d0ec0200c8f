//! The guard in the pipeline: the input guard between *admit* and *route*, the output guard in
//! *respond* — for complete answers and for streams.
//!
//! - **Input** ([`guard_chat`], [`guard_embeddings`]): every text the policy's scope names —
//!   message contents (string or text parts), the tool-call arguments of assistant messages, the
//!   contents of `tool` messages, embeddings inputs — is scanned and the policy applied in place:
//!   masks, hashes and the conversation's tokens replace values, so the provider never sees them.
//!   A type whose action is `block` refuses the request ([`ApiError::PolicyViolation`], naming
//!   the types, never the values).
//! - **Output** ([`guard_answer`], [`StreamShield`]): each choice's content and each tool call's
//!   arguments go through a [`tollgate_guard::stream::OutputFilter`] — new personal data and
//!   secrets are masked, the conversation's tokens put back — chunk by chunk for streams, with
//!   the same result as for the complete answer.
//! - **Report** ([`GuardReport`]): the policy's label, whether each direction ran (`ran`, `off`
//!   when the policy's scope leaves it out, `not_run` when the request ended before it could
//!   run), and counts per type, action and direction for the ledger and the metrics — never a
//!   value.

use crate::error::ApiError;
use crate::policies::Governed;
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tollgate_guard::policy::Applied;
use tollgate_guard::stream::{CredentialHold, Credentials, Output, OutputFilter, guard_output};
use tollgate_guard::{Action, Entity, SessionTokens};
use tollgate_providers::ProviderError;
use tollgate_types::openai::{
    ChatCompletionRequest, EmbeddingInput, EmbeddingsRequest, MessageContent, Role, Stop,
};

/// Whether a direction was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ran {
    /// The request ended before this check could run: never counted as passed.
    #[default]
    NotRun,
    /// Scanned.
    Ran,
    /// The policy's scope leaves it out.
    Off,
}

impl Ran {
    fn as_str(self) -> &'static str {
        match self {
            Ran::NotRun => "not_run",
            Ran::Ran => "ran",
            Ran::Off => "off",
        }
    }
}

/// What the guard did to one request: no value, only types, actions and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// The policy (`use_case@3`, `default@1`, `builtin`).
    pub policy: Option<String>,
    /// The input guard.
    pub input: Ran,
    /// The output guard.
    pub output: Ran,
    /// Findings per (type, action, `input` | `output`).
    pub counts: BTreeMap<(Entity, Action, &'static str), u32>,
}

impl GuardReport {
    /// Adds `counts` found in `direction`.
    pub fn add(&mut self, direction: &'static str, counts: &BTreeMap<(Entity, Action), u32>) {
        for ((e, a), n) in counts {
            *self.counts.entry((*e, *a, direction)).or_insert(0) += n;
        }
    }

    /// The ledger's JSON: `{"findings":[{"action","count","direction","type"}],"input":"ran","output":"ran"}`
    /// (keys sorted). Written directly — every request writes one — from names that need no
    /// escaping (entity, action and direction names are ASCII identifiers).
    pub fn to_json(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(48 + 80 * self.counts.len());
        s.push_str("{\"findings\":[");
        for (i, ((e, a, d), n)) in self.counts.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(
                s,
                "{{\"action\":\"{}\",\"count\":{n},\"direction\":\"{d}\",\"type\":\"{}\"}}",
                a.as_str(),
                e.as_str()
            );
        }
        let _ = write!(
            s,
            "],\"input\":\"{}\",\"output\":\"{}\"}}",
            self.input.as_str(),
            self.output.as_str()
        );
        s
    }
}

/// One request's view of its conversation's tokens and the key of `hash` actions.
pub struct Guarding<'a> {
    /// The policy.
    pub gov: &'a Governed,
    /// The key of `hash` actions.
    pub hash_key: &'a [u8],
    /// The conversation's tokens (new ones are added).
    pub tokens: &'a mut SessionTokens,
    /// What was found.
    pub report: &'a mut GuardReport,
}

impl Guarding<'_> {
    /// Applies the input side of the policy to `text` in place; types to block go to `blocked`.
    fn text(&mut self, text: &mut String, blocked: &mut BTreeSet<Entity>) {
        if let Some(n) = tollgate_guard::policy::neutralize_tokens(text) {
            *text = n;
        }
        let applied =
            self.gov
                .policy
                .apply(&self.gov.guard, text, self.hash_key, &mut *self.tokens);
        let changed = applied.text != *text;
        let new_text = self.took(applied, blocked);
        if changed {
            *text = new_text;
        }
    }

    /// Token ids of an embeddings input: guarded as the text they stand for, re-encoded when
    /// changed. Ids outside the vocabulary cannot be read, so they are refused rather than let
    /// through unscanned.
    fn token_ids(
        &mut self,
        ids: &mut Vec<u32>,
        blocked: &mut BTreeSet<Entity>,
    ) -> Result<(), ApiError> {
        let Some(mut text) = tollgate_meter::estimate::embedding_tokens_text(ids) else {
            return Err(ApiError::invalid(
                "input holds token ids outside the embedding models' vocabulary (cl100k_base); \
                 the policy's guard cannot read them",
                Some("input".into()),
            ));
        };
        let before = text.clone();
        self.text(&mut text, blocked);
        if text != before {
            *ids = tollgate_meter::estimate::embedding_text_tokens(&text);
        }
        Ok(())
    }

    /// Counts what `applied` found and notes the types to block; gives back its text.
    fn took(&mut self, applied: Applied, blocked: &mut BTreeSet<Entity>) -> String {
        self.report.add("input", &applied.counts);
        blocked.extend(applied.blocked);
        applied.text
    }

    fn content(&mut self, content: &mut MessageContent, blocked: &mut BTreeSet<Entity>) {
        match content {
            MessageContent::Text(t) => self.text(t, blocked),
            MessageContent::Parts(parts) => {
                for p in parts.iter_mut() {
                    if let Some(t) = p.text.as_mut() {
                        self.text(t, blocked);
                    }
                    // An image's URL can carry a value in its query (inline `data:` images are
                    // left alone); so can any other field of the part.
                    if let Some(image) = p.image_url.as_mut() {
                        self.value(image, blocked);
                    }
                    self.strings(&mut p.extra, blocked);
                }
            }
        }
    }

    /// Values split across consecutive texts (each guarded on its own already), which the
    /// provider reads together: `4111 1111` + `1111 1111` in two parts or two messages.
    fn seams(&mut self, pieces: &mut [&mut String], blocked: &mut BTreeSet<Entity>) {
        let applied =
            self.gov
                .policy
                .apply_seams(&self.gov.guard, pieces, self.hash_key, &mut *self.tokens);
        self.took(applied, blocked);
    }

    /// Every string of fields the gateway does not model (`refusal`, legacy `function_call`,
    /// `metadata`, `prediction`, provider extensions): the provider sees them, so the guard does
    /// too. Only inline binary data is left alone: a base64 `data:` URL, or a long base64 string
    /// (an audio part's `data`) — never a short string, whatever its field's name.
    fn strings(
        &mut self,
        fields: &mut serde_json::Map<String, Value>,
        blocked: &mut BTreeSet<Entity>,
    ) {
        for v in fields.values_mut() {
            self.value(v, blocked);
        }
    }

    fn value(&mut self, v: &mut Value, blocked: &mut BTreeSet<Entity>) {
        match v {
            Value::String(s) if let Some((head, mut text)) = text_data_url(s) => {
                // A text file inline (`data:text/plain;base64,…`): its text is guarded, then
                // written back in base64.
                let before = text.clone();
                self.text(&mut text, blocked);
                if text != before {
                    use base64::Engine;
                    *s = format!(
                        "{head}{}",
                        base64::engine::general_purpose::STANDARD.encode(text)
                    );
                }
            }
            Value::String(s) if !inline_binary(s) => self.text(s, blocked),
            Value::Array(items) => {
                for x in items {
                    self.value(x, blocked);
                }
            }
            Value::Object(map) => self.strings(map, blocked),
            _ => {}
        }
    }

    fn refuse(blocked: BTreeSet<Entity>) -> Result<(), ApiError> {
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(ApiError::PolicyViolation(
                blocked.iter().map(|e| e.as_str().to_string()).collect(),
            ))
        }
    }
}

/// A `data:` URL of text in base64 (`text/*`, JSON, XML, CSV): its head up to the comma, and its
/// text (when it decodes and is UTF-8).
fn text_data_url(s: &str) -> Option<(&str, String)> {
    use base64::Engine;
    let rest = s.strip_prefix("data:")?;
    let (mime, data) = rest.split_once(";base64,")?;
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let textual = mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json" | "application/xml" | "application/csv" | "application/x-yaml"
        );
    if !textual || mime.contains(',') {
        return None;
    }
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = lenient.decode(clean).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some((&s[..s.len() - data.len()], text))
}

/// Inline binary data, which is not text to scan: a base64 `data:` URL, or a base64 string
/// longer than any value the guard looks for (audio, files).
fn inline_binary(s: &str) -> bool {
    let base64 = |t: &str| {
        t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n' | b'\r'))
    };
    match s.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .is_some_and(|(mime, data)| !mime.contains(',') && base64(data)),
        None => s.len() > 4096 && base64(s),
    }
}

/// The input guard of a chat request: every text the provider will read — messages (contents,
/// names, tool calls with their ids, names and arguments, tool results and their call ids), the
/// tools offered (names, descriptions, parameter schemas), `tool_choice`, `stop`, the response
/// format's schema, `user`, and every field the gateway does not model (`metadata`,
/// `prediction`, extensions).
pub fn guard_chat(g: &mut Guarding<'_>, req: &mut ChatCompletionRequest) -> Result<(), ApiError> {
    let scope = g.gov.policy.scan;
    let mut blocked = BTreeSet::new();
    for m in &mut req.messages {
        let is_tool = m.role == Role::Tool;
        if (is_tool && scope.tool_results) || (!is_tool && scope.input) {
            if let Some(c) = m.content.as_mut() {
                g.content(c, &mut blocked);
            }
            if let Some(n) = m.name.as_mut() {
                g.text(n, &mut blocked);
            }
            if let Some(id) = m.tool_call_id.as_mut() {
                g.text(id, &mut blocked);
            }
            g.strings(&mut m.extra, &mut blocked);
        }
        if let Some(calls) = m.tool_calls.as_mut() {
            for c in calls {
                if scope.tool_arguments {
                    g.text(&mut c.function.arguments, &mut blocked);
                }
                if scope.input {
                    g.text(&mut c.id, &mut blocked);
                    g.text(&mut c.function.name, &mut blocked);
                }
            }
        }
    }
    // The texts of the conversation in order (contents and text parts of the messages in
    // scope, then their tool calls' arguments): a value cut across two of them is read whole.
    let mut pieces: Vec<&mut String> = Vec::new();
    for m in &mut req.messages {
        let is_tool = m.role == Role::Tool;
        if (is_tool && scope.tool_results) || (!is_tool && scope.input) {
            match m.content.as_mut() {
                Some(MessageContent::Text(t)) => pieces.push(t),
                Some(MessageContent::Parts(parts)) => {
                    pieces.extend(parts.iter_mut().filter_map(|p| p.text.as_mut()));
                }
                None => {}
            }
        }
        if scope.tool_arguments {
            for c in m.tool_calls.iter_mut().flatten() {
                pieces.push(&mut c.function.arguments);
            }
        }
    }
    g.seams(&mut pieces, &mut blocked);
    if scope.input {
        for t in req.tools.iter_mut().flatten() {
            let f = &mut t.function;
            g.text(&mut f.name, &mut blocked);
            if let Some(d) = f.description.as_mut() {
                g.text(d, &mut blocked);
            }
            if let Some(p) = f.parameters.as_mut() {
                g.value(p, &mut blocked);
            }
            g.strings(&mut f.extra, &mut blocked);
        }
        if let Some(c) = req.tool_choice.as_mut() {
            g.value(c, &mut blocked);
        }
        match req.stop.as_mut() {
            Some(Stop::One(s)) => g.text(s, &mut blocked),
            Some(Stop::Many(v)) => v.iter_mut().for_each(|s| g.text(s, &mut blocked)),
            None => {}
        }
        if let Some(f) = req.response_format.as_mut() {
            if let Some(schema) = f.json_schema.as_mut() {
                g.value(schema, &mut blocked);
            }
            g.strings(&mut f.extra, &mut blocked);
        }
        if let Some(u) = req.user.as_mut() {
            g.text(u, &mut blocked);
        }
        if let Some(o) = req.stream_options.as_mut() {
            g.strings(&mut o.extra, &mut blocked);
        }
        g.strings(&mut req.extra, &mut blocked);
    }
    g.report.input = if scope.input || scope.tool_arguments || scope.tool_results {
        Ran::Ran
    } else {
        Ran::Off
    };
    Guarding::refuse(blocked)
}

/// The input guard of an embeddings request. Token-array inputs are read as the text they stand
/// for (the embedding models' `cl100k_base`), guarded, and written back as tokens when the guard
/// changed them: the provider decodes them, so they are text like any other.
pub fn guard_embeddings(g: &mut Guarding<'_>, req: &mut EmbeddingsRequest) -> Result<(), ApiError> {
    if !g.gov.policy.scan.input {
        g.report.input = Ran::Off;
        return Ok(());
    }
    let mut blocked = BTreeSet::new();
    if let Some(u) = req.user.as_mut() {
        g.text(u, &mut blocked);
    }
    g.strings(&mut req.extra, &mut blocked);
    match &mut req.input {
        EmbeddingInput::One(t) => g.text(t, &mut blocked),
        EmbeddingInput::Many(ts) => {
            for t in ts {
                g.text(t, &mut blocked);
            }
        }
        EmbeddingInput::Tokens(ids) => g.token_ids(ids, &mut blocked)?,
        EmbeddingInput::ManyTokens(lists) => {
            for ids in lists {
                g.token_ids(ids, &mut blocked)?;
            }
        }
    }
    g.report.input = Ran::Ran;
    Guarding::refuse(blocked)
}

/// What the output guard needs for the rest of a request: owned, so a stream relay can keep it.
#[derive(Clone)]
pub struct OutputGuard {
    /// The policy.
    pub gov: Arc<Governed>,
    /// The key of `hash` actions.
    pub hash_key: Arc<[u8]>,
    /// The conversation's tokens to put back.
    pub tokens: Arc<SessionTokens>,
    /// Whether the answer is kept for the payload log.
    pub capture: bool,
    /// The gateway's own credentials, masked out of every answer whatever the policy.
    pub credentials: Arc<Credentials>,
}

impl std::fmt::Debug for OutputGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputGuard")
            .field("policy", &self.gov.label)
            .finish_non_exhaustive()
    }
}

impl OutputGuard {
    /// Whether answers need touching at all (a scan, or tokens to put back).
    pub fn is_active(&self) -> bool {
        self.gov.policy.scan.output || !self.tokens.is_empty() || self.capture
    }

    /// The answer as the payload log keeps it: as shown (`full`), or with every finding masked
    /// — the user's own values included (`masked`).
    pub fn answer_for_log(&self, shown: &str) -> String {
        if self.gov.policy.logging != tollgate_guard::policy::Logging::Masked {
            return shown.to_string();
        }
        let out = Output {
            tokens: None,
            scan: true,
            mask_all: true,
            ..self.output()
        };
        guard_output(&out, shown).0
    }

    /// A provider's error as the client may be told it: every finding in its text masked
    /// (`<TYPE>`), whatever the policy's action. The text is the provider's, not an answer, so
    /// nothing in it is unmasked, and it is scanned even when answers are not.
    pub fn clean_error(&self, e: ProviderError) -> ProviderError {
        let out = Output {
            tokens: None,
            scan: true,
            mask_all: true,
            ..self.output()
        };
        e.map_text(|text| guard_output(&out, &text).0)
    }

    fn output(&self) -> Output<'_> {
        Output {
            policy: &self.gov.policy,
            guard: &self.gov.guard,
            hash_key: &self.hash_key,
            tokens: Some(&self.tokens),
            scan: self.gov.policy.scan.output,
            mask_all: false,
            credentials: Some(&self.credentials),
        }
    }

    fn ran(&self) -> Ran {
        if self.gov.policy.scan.output {
            Ran::Ran
        } else {
            Ran::Off
        }
    }
}

/// The output guard of a complete chat answer (OpenAI JSON): each choice's content and tool-call
/// arguments guarded and unmasked. An answer that is not the JSON expected passes only when the
/// guard has nothing to do; otherwise it is refused (never shown unscanned).
pub fn guard_answer(
    og: &OutputGuard,
    body: Bytes,
    report: &mut GuardReport,
) -> Result<Bytes, ApiError> {
    // Untouched unless the policy asks for more, or one of the gateway's credentials may be in it.
    let suspect = og.credentials.may_be_in_json(&body);
    // Written across blanks (base64 wrapped over lines, a key spelled with spaces, hex in pairs):
    // the texts that show one are withheld whole, below.
    let across = og.credentials.shows_across_blanks(&body);
    if !og.is_active() && !suspect && !across && !og.credentials.may_be_spelled_in_json(&body) {
        report.output = og.ran();
        return Ok(body);
    }
    // An answer that is not text cannot be guarded (nor read by the client's JSON parser).
    if let Err(e) = std::str::from_utf8(&body) {
        return Err(unreadable(format!(
            "the answer is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    let out = og.output();
    if !suspect && !across {
        // The usual case: one reading of the answer, no tree; the provider's bytes go out as
        // they came unless a text changes, and then only that text is written anew.
        let mut lean = Lean {
            out: &out,
            body: &body,
            counts: BTreeMap::new(),
            edits: Vec::new(),
            logprobs: false,
            tree: false,
        };
        crate::answer_walk::walk(&body, &mut lean).map_err(not_json)?;
        if !lean.needs_tree(&og.credentials, og.gov.policy.scan.output) {
            let Lean { counts, edits, .. } = lean;
            report.add("output", &counts);
            report.output = og.ran();
            return Ok(splice(body, edits));
        }
    }
    let mut v: Value = serde_json::from_slice(&body).map_err(not_json)?;
    let mut counts = BTreeMap::new();
    // Texts changed so far (masked, or tokens put back): a choice with a change loses its log
    // probabilities.
    let changes = std::cell::Cell::new(0u32);
    // Credentials masked in log probabilities.
    let mut lp_masked = 0u32;
    // What log probabilities withheld beside unchanged texts showed.
    let mut lp_found = BTreeMap::new();
    let mut guard = |s: &mut Value| {
        if guard_whole(&out, &mut counts, s) {
            changes.set(changes.get() + 1);
        }
    };
    // Outside the choices: every field no one models (a provider's citations, notes …), a
    // `choices` that is not an array, a document that is not an object — read whole. Not the
    // fields every answer carries about itself (`answer_walk::is_meta_key`).
    outside_choices(&mut v, &mut guard);
    if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            let before = changes.get();
            // Every text of the message: content (a string or parts), refusal, reasoning,
            // audio transcripts, tool calls (arguments, names, ids), legacy function calls; the
            // legacy completion's `text`; and any field of the choice no one models (a
            // provider's extension). Not the log probabilities (below) or a finish reason that
            // is one of the tags.
            match choice.as_object_mut() {
                Some(fields) => {
                    for (k, x) in fields.iter_mut() {
                        match k.as_str() {
                            "logprobs" => {}
                            "finish_reason" if is_tag_value(x) => {}
                            _ => every_string(x, &mut guard),
                        }
                    }
                }
                // A choice that is not an object: read whole.
                None => every_string(choice, &mut guard),
            }
            // Log probabilities spell the text out token by token, past any mask; beside a
            // text that did not change, their tokens and alternatives are read (an alternative
            // may spell what the text did not say), and withheld if they show something.
            let changed = changes.get() != before;
            let spelled = !changed
                && og.gov.policy.scan.output
                && choice
                    .get("logprobs")
                    .is_some_and(|lp| logprobs_show_more(&out, lp, &mut lp_found));
            if (changed || spelled)
                && let Some(lp) = choice.get_mut("logprobs")
            {
                *lp = Value::Null;
            } else if !og.credentials.is_empty()
                && let Some(lp) = choice.get_mut("logprobs")
            {
                // Shown: a credential spelled token by token (or by the alternatives, or the
                // bytes) is masked as in a stream.
                for list in LOGPROB_LISTS {
                    let Some(entries) = lp.get_mut(list).and_then(Value::as_array_mut) else {
                        continue;
                    };
                    let mut holds = LogprobHolds::default();
                    let shown = holds.push(&og.credentials, entries.clone(), true);
                    lp_masked += holds.found();
                    if shown != *entries {
                        *entries = shown;
                    }
                }
            }
        }
    }
    count_masked(lp_masked, &mut counts);
    for (k, n) in lp_found {
        *counts.entry(k).or_insert(0) += n;
    }
    if across {
        // What is left (after the masks above) that shows one across blanks: the whole text,
        // wherever it is in the answer.
        let mut withheld = 0u32;
        every_string(&mut v, &mut |s: &mut Value| {
            if s.as_str()
                .is_some_and(|t| og.credentials.shows_across_blanks(t.as_bytes()))
            {
                *s = Value::String(format!("<{}>", Entity::SecretGeneric.as_str()));
                withheld += 1;
            }
        });
        if withheld > 0 {
            count_masked(withheld, &mut counts);
        }
    }
    if suspect {
        // Anywhere else too (`model`, `id`, usage, fields no one models, object keys).
        mask_credentials(&mut v, &og.credentials, &mut counts);
    }
    report.add("output", &counts);
    report.output = og.ran();
    // Written anew even when the tree's texts did not change: the tree keeps the last copy of a
    // repeated key, and the copy it dropped — which the reading without a tree found a value to
    // mask in, or where a credential may be — must not go out as the provider wrote it.
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|_| ApiError::Internal)
}

/// [`guard_answer`]'s reading without a tree ([`crate::answer_walk`]): each text guarded as
/// the tree pass would, what changed kept as an edit of the answer's bytes.
struct Lean<'o> {
    out: &'o Output<'o>,
    /// The answer.
    body: &'o [u8],
    counts: BTreeMap<(Entity, Action), u32>,
    /// In the answer's order: the characters of a string (between its quotes) and what they
    /// become.
    edits: Vec<(std::ops::Range<usize>, String)>,
    /// A choice carries log probabilities.
    logprobs: bool,
    /// Only the tree pass can write this answer (a changed text that was escaped in the
    /// answer): the rest of the reading is not guarded here.
    tree: bool,
}

impl Lean<'_> {
    /// Whether the tree pass must do the work: a changed text that was not the answer's bytes
    /// as they were; log probabilities that must go with a change (they spell the old text),
    /// that a policy scanning answers reads, or that may spell one of the gateway's credentials.
    fn needs_tree(&self, creds: &Credentials, scan: bool) -> bool {
        self.tree || (self.logprobs && (scan || !self.edits.is_empty() || !creds.is_empty()))
    }
}

/// `body` with each edit's string written anew (quoted and escaped as JSON); the edits in the
/// answer's order, each the characters between a string's quotes.
fn splice(body: Bytes, edits: Vec<(std::ops::Range<usize>, String)>) -> Bytes {
    if edits.is_empty() {
        return body;
    }
    let grow: usize = edits.iter().map(|(_, s)| s.len() + 2).sum();
    let mut out = Vec::with_capacity(body.len() + grow);
    let mut from = 0;
    for (span, shown) in edits {
        // Up to its opening quote; the closing one is passed over below.
        out.extend_from_slice(&body[from..span.start - 1]);
        // Writing a string into a vector cannot fail.
        let _ = serde_json::to_writer(&mut out, &shown);
        from = span.end + 1;
    }
    out.extend_from_slice(&body[from..]);
    Bytes::from(out)
}

impl crate::answer_walk::Texts for Lean<'_> {
    fn text(&mut self, s: &str, at: Option<usize>) {
        if self.tree {
            return;
        }
        let (shown, c) = guard_output(self.out, s);
        if shown != s {
            // Between quotes in the answer, as serde_json lends only the bytes of a string
            // without escapes; anything else is left to the tree.
            let quoted = |i: usize| {
                i > 0
                    && self.body.get(i - 1) == Some(&b'"')
                    && self.body.get(i + s.len()) == Some(&b'"')
            };
            match at.filter(|&i| quoted(i)) {
                Some(i) => self.edits.push((i..i + s.len(), shown)),
                None => {
                    self.tree = true;
                    return;
                }
            }
        }
        for (k, n) in c {
            *self.counts.entry(k).or_insert(0) += n;
        }
    }

    fn logprobs(&mut self) {
        self.logprobs = true;
    }
}

/// An upstream answer the gateway cannot read: 502 `invalid_response`, saying why (the parser's
/// place and reason, never the answer's text).
fn unreadable(why: String) -> ApiError {
    ApiError::Upstream(tollgate_providers::ProviderError::InvalidResponse(why))
}

/// A streamed chunk the gateway cannot read.
fn unreadable_chunk(e: serde_json::Error) -> ProviderError {
    ProviderError::InvalidResponse(format!("a streamed chunk is not valid JSON: {e}"))
}

/// [`unreadable`], for an answer that is not JSON (a lone surrogate escape among the reasons).
fn not_json(e: serde_json::Error) -> ApiError {
    unreadable(format!("the answer is not valid JSON: {e}"))
}

/// Masks each of the gateway's credentials left anywhere in `v` — any string, any object key —
/// as `<SECRET_GENERIC>`; how many.
pub fn blank_credentials(v: &mut Value, creds: &Credentials) -> u32 {
    match v {
        Value::String(s) => blank_text(s, creds),
        Value::Array(items) => items.iter_mut().map(|x| blank_credentials(x, creds)).sum(),
        Value::Object(map) => {
            let mut n = 0;
            let named: Vec<String> = map
                .keys()
                .filter(|k| !creds.spans(k.as_bytes()).is_empty())
                .cloned()
                .collect();
            for k in named {
                if let Some(x) = map.remove(&k) {
                    let mut masked = k;
                    n += blank_text(&mut masked, creds);
                    map.insert(masked, x);
                }
            }
            n + map
                .values_mut()
                .map(|x| blank_credentials(x, creds))
                .sum::<u32>()
        }
        _ => 0,
    }
}

/// [`blank_credentials`], counted as `SECRET_GENERIC` masked in `counts`.
fn mask_credentials(
    v: &mut Value,
    creds: &Credentials,
    counts: &mut BTreeMap<(Entity, Action), u32>,
) {
    count_masked(blank_credentials(v, creds), counts);
}

/// Counts `n` credentials masked, as `SECRET_GENERIC` masked.
fn count_masked(n: u32, counts: &mut BTreeMap<(Entity, Action), u32>) {
    if n > 0 {
        *counts
            .entry((Entity::SecretGeneric, Action::Mask))
            .or_insert(0) += n;
    }
}

/// `s` with each credential in it masked; how many.
fn blank_text(s: &mut String, creds: &Credentials) -> u32 {
    let spans = creds.spans(s.as_bytes());
    if spans.is_empty() {
        return 0;
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for &(a, b) in &spans {
        out.push_str(&s[at..a]);
        out.push('<');
        out.push_str(Entity::SecretGeneric.as_str());
        out.push('>');
        at = b;
    }
    out.push_str(&s[at..]);
    *s = out;
    spans.len() as u32
}

/// A whole JSON answer the output guard does not otherwise read (embeddings) with the gateway's
/// credentials masked anywhere in it; an answer that holds one and is not JSON is refused.
pub fn blank_credentials_in(body: Bytes, creds: &Credentials) -> Result<Bytes, ApiError> {
    if !creds.may_be_in_json(&body) {
        return Ok(body);
    }
    let mut v: Value = serde_json::from_slice(&body).map_err(not_json)?;
    blank_credentials(&mut v, creds);
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|_| ApiError::Internal)
}

/// Guards the string `v` whole (a value that is not a string is left), counting what was
/// found; whether it changed.
fn guard_whole(out: &Output, counts: &mut BTreeMap<(Entity, Action), u32>, v: &mut Value) -> bool {
    let Some(text) = v.as_str() else {
        return false;
    };
    let (shown, c) = guard_output(out, text);
    for (k, n) in c {
        *counts.entry(k).or_insert(0) += n;
    }
    if shown == text {
        return false;
    }
    *v = Value::String(shown);
    true
}

/// Applies `guard` to the strings of an answer or chunk outside its choices that are read: every
/// field no one models (not those every answer carries about itself, `answer_walk::is_meta_key`),
/// a `choices` that is not an array, a document that is not an object (whole).
fn outside_choices(v: &mut Value, guard: &mut impl FnMut(&mut Value)) {
    match v.as_object_mut() {
        Some(top) => {
            for (k, x) in top.iter_mut() {
                let choices = k == "choices" && x.is_array();
                if !(choices || crate::answer_walk::is_meta_key(k)) {
                    every_string(x, guard);
                }
            }
        }
        None => every_string(v, guard),
    }
}

/// Applies `f` to every string under `v` but the tags providers send as a `role` or `type`
/// ([`crate::answer_walk::is_tag`]).
fn every_string(v: &mut Value, f: &mut impl FnMut(&mut Value)) {
    match v {
        Value::String(_) => f(v),
        Value::Array(items) => items.iter_mut().for_each(|x| every_string(x, f)),
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if !(matches!(k.as_str(), "role" | "type") && is_tag_value(x)) {
                    every_string(x, f);
                }
            }
        }
        _ => {}
    }
}

/// A string that is one of the tags providers send ([`crate::answer_walk::is_tag`]).
fn is_tag_value(v: &Value) -> bool {
    v.as_str().is_some_and(crate::answer_walk::is_tag)
}

/// The text of a complete chat answer (OpenAI JSON): each choice's content and tool-call
/// arguments, one per line.
pub fn answer_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let mut out = Vec::new();
    for choice in v["choices"].as_array().into_iter().flatten() {
        if let Some(c) = choice["message"]["content"].as_str() {
            out.push(c.to_string());
        }
        for call in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(a) = call["function"]["arguments"].as_str() {
                out.push(a.to_string());
            }
        }
    }
    out.join("\n")
}

/// A streamed text of a choice: one of its text fields, or a tool call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Text(&'static str),
    Tool(u64),
}

/// The text fields of a streamed delta (`.` goes one object down), each held back and guarded
/// like the content. Every other string of a delta is guarded whole, chunk by chunk.
const DELTA_TEXTS: [&str; 5] = [
    "content",
    "refusal",
    "reasoning_content",
    "reasoning",
    "audio.transcript",
];

/// The string at `path` (see [`DELTA_TEXTS`]) of a delta, if there is one.
fn delta_text<'a>(
    delta: &'a mut serde_json::Map<String, Value>,
    path: &str,
) -> Option<&'a mut String> {
    let mut parts = path.split('.');
    let mut v = delta.get_mut(parts.next()?)?;
    for p in parts {
        v = v.get_mut(p)?;
    }
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Appends `rest` to the string at `path` of a delta, making the objects on the way.
fn append_delta_text(delta: &mut serde_json::Map<String, Value>, path: &str, rest: &str) {
    append_at(delta, path.split('.').collect(), rest);
}

/// Appends `rest` to the string at the end of the object keys `parts` under `map`, making the
/// objects on the way.
fn append_at(map: &mut serde_json::Map<String, Value>, mut parts: Vec<&str>, rest: &str) {
    let Some(last) = parts.pop() else { return };
    let mut map = map;
    for p in parts {
        let next = map
            .entry(p)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        // A provider's `null` where the held text goes is an empty object.
        if next.is_null() {
            *next = Value::Object(serde_json::Map::new());
        }
        let Some(m) = next.as_object_mut() else {
            return;
        };
        map = m;
    }
    let before = map
        .get(last)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    map.insert(last.into(), Value::String(before + rest));
}

/// One step of the way from a delta to one of its strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Step {
    /// An object's key.
    Key(String),
    /// An array's position.
    Index(usize),
}

/// Every string of a delta that is not a held-back text, a tool call or a role that is one of
/// the tags ([`crate::answer_walk::is_tag`]): applies `f` with the way to it from the delta
/// (object keys and array positions).
fn other_delta_strings(
    delta: &mut serde_json::Map<String, Value>,
    f: &mut impl FnMut(&[Step], &mut Value),
) {
    for (k, v) in delta.iter_mut() {
        match k.as_str() {
            "tool_calls" => {}
            "role" if is_tag_value(v) => {}
            "content" | "refusal" | "reasoning_content" | "reasoning" if v.is_string() => {}
            "audio" => {
                if let Some(audio) = v.as_object_mut() {
                    for (ak, av) in audio.iter_mut() {
                        // `data` is the audio itself (base64).
                        if !(ak == "transcript" && av.is_string()) && ak != "data" {
                            let mut path = vec![Step::Key(k.clone()), Step::Key(ak.clone())];
                            every_string_at(av, &mut path, f);
                        }
                    }
                }
            }
            _ => every_string_at(v, &mut vec![Step::Key(k.clone())], f),
        }
    }
}

/// [`every_string`] with the way to each string.
fn every_string_at(v: &mut Value, path: &mut Vec<Step>, f: &mut impl FnMut(&[Step], &mut Value)) {
    match v {
        Value::String(_) => f(path, v),
        Value::Array(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                every_string_at(x, path, f);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if !(matches!(k.as_str(), "role" | "type") && is_tag_value(x)) {
                    path.push(Step::Key(k.clone()));
                    every_string_at(x, path, f);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Appends `rest` to the string at `path` under `v`, making the objects and arrays on the way
/// where there is nothing (or `null`; positions before the one named are `null`); a value of
/// another type on the way is left as it is.
fn append_path(v: &mut Value, path: &[Step], rest: &str) {
    let Some((step, more)) = path.split_first() else {
        match v {
            Value::String(s) => s.push_str(rest),
            // A provider's value of another type there (it changed the field's type within
            // the stream) is kept, and the held text dropped.
            Value::Null => *v = Value::String(rest.to_string()),
            _ => {}
        }
        return;
    };
    match step {
        Step::Key(k) => {
            if v.is_null() {
                *v = Value::Object(serde_json::Map::new());
            }
            if let Some(m) = v.as_object_mut() {
                append_path(m.entry(k.clone()).or_insert(Value::Null), more, rest);
            }
        }
        Step::Index(i) => {
            if v.is_null() {
                *v = Value::Array(Vec::new());
            }
            if let Some(a) = v.as_array_mut() {
                if a.len() <= *i {
                    a.resize(i + 1, Value::Null);
                }
                append_path(&mut a[*i], more, rest);
            }
        }
    }
}

/// A streamed string no [`OutputFilter`] holds back, held only while it ends like the start of
/// one of the gateway's credentials ([`CredentialHold`]): a credential cut one character per
/// chunk across a tool call's name or a field a provider adds is masked like one in the content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Held {
    /// A tool call's `id` or its function's `name`: the call's index and the keys to it.
    Tool(u64, [&'static str; 2]),
    /// Any other string of a delta: the way to it.
    Field(Vec<Step>),
    /// The `text` of a choice (streamed completions, where clients join it like content):
    /// the keys to it from the choice.
    Choice(Vec<String>),
}

/// The [`CredentialHold`]s of a stream: its held strings and its log probabilities' tokens
/// (shown only when answers are not scanned), per choice.
#[derive(Debug, Default)]
struct Holds {
    texts: HashMap<(u64, Held), CredentialHold<()>>,
    logprobs: HashMap<(u64, &'static str), LogprobHolds>,
}

/// The holds of one list of log probabilities, in a chain: its tokens, its `bytes`, then the
/// tokens and the bytes of each rank of alternatives (`top_logprobs[k]`) — an entry leaves the
/// list once every sequence it is part of shows no credential's start, so a credential spelled
/// one entry at a time by the tokens, by the bytes (a character's bytes may span entries) or by
/// the first (second, …) alternatives is found like one spelled by a text's pieces.
#[derive(Debug, Default)]
struct LogprobHolds {
    stages: Vec<CredentialHold<Value>>,
    /// Per stage of bytes, the start of a character whose other bytes are to come.
    carry: Vec<Vec<u8>>,
}

/// The most ranks of alternatives read ([`LogprobHolds`]; OpenAI gives at most 20): a longer
/// list's further alternatives are dropped.
const MAX_RANKS: usize = 20;

impl LogprobHolds {
    /// The next entries: those that may be shown now (all of them when `last`), masked where a
    /// sequence spelled a credential.
    fn push(&mut self, creds: &Credentials, mut entries: Vec<Value>, last: bool) -> Vec<Value> {
        for e in &mut entries {
            if let Some(Value::Array(alts)) = e.get_mut("top_logprobs") {
                alts.truncate(MAX_RANKS);
            }
        }
        let mut stage = 0;
        while stage < self.stages.len() || entries.iter().any(|e| logprob_at(e, stage).is_some()) {
            if stage == self.stages.len() {
                self.stages.push(CredentialHold::default());
                self.carry.push(Vec::new());
            }
            let carry = &mut self.carry[stage];
            let items: Vec<(String, Value)> = entries
                .into_iter()
                .map(|e| (logprob_text(&e, stage, carry), e))
                .collect();
            let hold = &mut self.stages[stage];
            let mut released = hold.push(creds, items);
            if last {
                released.extend(hold.finish(creds));
            }
            entries = released
                .into_iter()
                .map(|(t, e, changed)| {
                    if changed {
                        masked_logprob(e, stage, t)
                    } else {
                        e
                    }
                })
                .collect();
            stage += 1;
        }
        entries
    }

    /// Whether entries are held.
    fn is_holding(&self) -> bool {
        self.stages.iter().any(CredentialHold::is_holding)
    }

    /// Occurrences masked so far.
    fn found(&self) -> u32 {
        self.stages.iter().map(CredentialHold::found).sum()
    }
}

/// What stage `stage` of [`LogprobHolds`] reads of an entry: the entry itself (rank 0) or one of
/// its alternatives, and whether its bytes (odd stages) or its token.
fn logprob_at(e: &Value, stage: usize) -> Option<&Value> {
    let target = match stage / 2 {
        0 => e,
        k => e.get("top_logprobs")?.get(k - 1)?,
    };
    target.get(if stage.is_multiple_of(2) {
        "token"
    } else {
        "bytes"
    })
}

/// The text of an entry at `stage`: its token, or the characters its bytes complete (after what
/// `carry` holds of the last entry's; an unfinished character is carried on, a byte that
/// begins none is U+FFFD).
fn logprob_text(e: &Value, stage: usize, carry: &mut Vec<u8>) -> String {
    let Some(v) = logprob_at(e, stage) else {
        return String::new();
    };
    if stage.is_multiple_of(2) {
        return v.as_str().unwrap_or_default().to_string();
    }
    let mut bytes = std::mem::take(carry);
    bytes.extend(
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok())),
    );
    let mut text = String::new();
    let mut rest = bytes.as_slice();
    loop {
        match std::str::from_utf8(rest) {
            Ok(t) => {
                text.push_str(t);
                break;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(ok).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        text.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    None => {
                        carry.extend_from_slice(bad);
                        break;
                    }
                }
            }
        }
    }
    text
}

/// The lists of a choice's `logprobs` whose tokens spell its text.
const LOGPROB_LISTS: [&str; 2] = ["content", "refusal"];

/// Tokens either side of an alternative read with it: a value or term an alternative completes
/// is found with up to this many of the chosen tokens around it.
const LOGPROB_WINDOW: usize = 8;

/// Whether a choice's log probabilities, beside a text the output guard did not change, show
/// something it would act on — their tokens joined (which should be the text; a provider's may
/// not be), or one alternative in place of its token with [`LOGPROB_WINDOW`] chosen tokens
/// either side (an alternative the model did not write may spell a denied term or a value);
/// any other string in them (a shape no one models) is read alone. What it shows is added to
/// `found`. Paths through two alternatives or more are not read (one alternative per window).
fn logprobs_show_more(
    out: &Output,
    lp: &Value,
    found: &mut BTreeMap<(Entity, Action), u32>,
) -> bool {
    let Some(lists) = lp.as_object() else {
        return any_string_shows(out, lp, found);
    };
    for (list, v) in lists {
        let Some(entries) = v
            .as_array()
            .filter(|_| LOGPROB_LISTS.contains(&list.as_str()))
        else {
            if any_string_shows(out, v, found) {
                return true;
            }
            continue;
        };
        fn token(e: &Value) -> &str {
            e.get("token").and_then(Value::as_str).unwrap_or("")
        }
        let chosen: Vec<&str> = entries.iter().map(token).collect();
        if shows(out, &chosen.concat(), found) {
            return true;
        }
        // The windows are read many at a time, apart by a line no value or term runs across:
        // one reading per 64 KiB, not one per alternative.
        let mut windows = String::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(alternatives) = e.get("top_logprobs").and_then(Value::as_array) else {
                continue;
            };
            let before = chosen[i.saturating_sub(LOGPROB_WINDOW)..i].concat();
            let after = chosen[i + 1..(i + 1 + LOGPROB_WINDOW).min(chosen.len())].concat();
            for a in alternatives {
                let t = token(a);
                if t == chosen[i] {
                    continue;
                }
                windows.push_str(&before);
                windows.push_str(t);
                windows.push_str(&after);
                windows.push_str(WINDOWS_APART);
                if windows.len() >= 64 * 1024 {
                    if shows(out, &windows, found) {
                        return true;
                    }
                    windows.clear();
                }
            }
        }
        if !windows.is_empty() && shows(out, &windows, found) {
            return true;
        }
    }
    false
}

/// Between two windows of [`logprobs_show_more`]: blank lines around a bar, which no value the
/// guard finds (an address, a number, a term) runs across.
const WINDOWS_APART: &str = "\n\n|\n\n";

/// Whether the output guard would change `text`; what it found added to `found` when it would.
fn shows(out: &Output, text: &str, found: &mut BTreeMap<(Entity, Action), u32>) -> bool {
    let (shown, c) = guard_output(out, text);
    if shown == text {
        return false;
    }
    for (k, n) in c {
        *found.entry(k).or_insert(0) += n;
    }
    true
}

/// [`shows`] of any string in `v`, each alone (a shape no one models; read from a copy).
fn any_string_shows(out: &Output, v: &Value, found: &mut BTreeMap<(Entity, Action), u32>) -> bool {
    let mut any = false;
    every_string(&mut v.clone(), &mut |x: &mut Value| {
        any = any || x.as_str().is_some_and(|t| shows(out, t, found));
    });
    any
}

impl Holds {
    /// The next piece of a held string: what may be shown now.
    fn text(&mut self, creds: &Credentials, idx: u64, at: Held, piece: String) -> String {
        let hold = self.texts.entry((idx, at)).or_default();
        hold.push(creds, [(piece, ())])
            .into_iter()
            .map(|(t, (), _)| t)
            .collect()
    }

    /// A chunk's log probabilities of one choice: the entries that may be shown now (a token
    /// that holds part of a credential shows the mark, without its bytes or alternatives).
    fn logprobs(&mut self, creds: &Credentials, idx: u64, choice: &mut Value) {
        for list in LOGPROB_LISTS {
            let Some(entries) = choice
                .pointer_mut(&format!("/logprobs/{list}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let hold = self.logprobs.entry((idx, list)).or_default();
            *entries = hold.push(creds, std::mem::take(entries), false);
        }
    }

    /// Choice `idx` has finished: what its holds keep goes into `choice` (its delta, its log
    /// probabilities), the strings guarded like every other string of a delta.
    fn flush(
        &mut self,
        creds: &Credentials,
        out: &Output<'_>,
        counts: &mut BTreeMap<(Entity, Action), u32>,
        idx: u64,
        choice: &mut serde_json::Map<String, Value>,
    ) {
        let mut keys: Vec<(u64, Held)> =
            self.texts.keys().filter(|k| k.0 == idx).cloned().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(mut hold) = self.texts.remove(&key) else {
                continue;
            };
            let rest: String = hold.finish(creds).into_iter().map(|(t, (), _)| t).collect();
            count_masked(hold.found(), counts);
            if rest.is_empty() {
                continue;
            }
            let (rest, c) = guard_output(out, &rest);
            for (k, n) in c {
                *counts.entry(k).or_insert(0) += n;
            }
            if let Held::Choice(keys) = &key.1 {
                append_at(choice, keys.iter().map(String::as_str).collect(), &rest);
                continue;
            }
            let Some(delta) = choice
                .entry("delta")
                .or_insert_with(|| Value::Object(serde_json::Map::new()))
                .as_object_mut()
            else {
                continue;
            };
            match key.1 {
                Held::Field(path) => {
                    if let Some((Step::Key(k), more)) = path.split_first() {
                        append_path(delta.entry(k.clone()).or_insert(Value::Null), more, &rest);
                    }
                }
                Held::Choice(_) => {}
                Held::Tool(tidx, keys) => {
                    let calls = delta
                        .entry("tool_calls")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if calls.is_null() {
                        *calls = Value::Array(Vec::new());
                    }
                    let Some(calls) = calls.as_array_mut() else {
                        continue;
                    };
                    let pos = calls
                        .iter()
                        .position(|c| c.get("index").and_then(Value::as_u64) == Some(tidx));
                    let p = pos.unwrap_or_else(|| {
                        calls.push(serde_json::json!({ "index": tidx }));
                        calls.len() - 1
                    });
                    if let Some(call) = calls[p].as_object_mut() {
                        let parts = keys.into_iter().filter(|k| !k.is_empty()).collect();
                        append_at(call, parts, &rest);
                    }
                }
            }
        }
        for list in LOGPROB_LISTS {
            let Some(mut hold) = self.logprobs.remove(&(idx, list)) else {
                continue;
            };
            let rest = hold.push(creds, Vec::new(), true);
            count_masked(hold.found(), counts);
            if rest.is_empty() {
                continue;
            }
            let lp = choice
                .entry("logprobs")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if lp.is_null() {
                *lp = Value::Object(serde_json::Map::new());
            }
            let Some(lp) = lp.as_object_mut() else {
                continue;
            };
            let entries = lp.entry(list).or_insert_with(|| Value::Array(Vec::new()));
            if entries.is_null() {
                *entries = Value::Array(Vec::new());
            }
            if let Some(entries) = entries.as_array_mut() {
                entries.extend(rest);
            }
        }
    }

    /// A choice's `text` (a streamed completion's), through its hold. The chunk's and the
    /// choice's other fields (`id`, `model`, `finish_reason`, a provider's own) are values
    /// clients take whole, chunk by chunk, not pieces they join: they are searched whole
    /// (`mask_credentials`), never held — holding them would move a repeated `model` into a
    /// chunk of its own.
    fn choice_rest(&mut self, creds: &Credentials, idx: u64, choice: &mut Value) {
        if let Some(Value::String(text)) = choice.get_mut("text") {
            let piece = std::mem::take(text);
            *text = self.text(creds, idx, Held::Choice(vec!["text".into()]), piece);
        }
    }

    /// The choices with something held.
    fn choices(&self) -> impl Iterator<Item = u64> + '_ {
        self.texts
            .iter()
            .filter(|(_, h)| h.is_holding())
            .map(|(k, _)| k.0)
            .chain(
                self.logprobs
                    .iter()
                    .filter(|(_, h)| h.is_holding())
                    .map(|(k, _)| k.0),
            )
    }

    /// Every hold's count, the holds emptied (the stream has ended).
    fn close(&mut self, counts: &mut BTreeMap<(Entity, Action), u32>) {
        let n: u32 = self.texts.values().map(CredentialHold::found).sum::<u32>()
            + self.logprobs.values().map(LogprobHolds::found).sum::<u32>();
        count_masked(n, counts);
        self.texts.clear();
        self.logprobs.clear();
    }
}

/// A log probability entry whose text at `stage` ([`logprob_text`]) held part of a credential:
/// that token shown as masked (and its bytes dropped), or those bytes dropped; a masked token's
/// alternatives are dropped too (they may spell what it did).
fn masked_logprob(mut e: Value, stage: usize, shown: String) -> Value {
    let target = match stage / 2 {
        0 => Some(&mut e),
        k => e.get_mut("top_logprobs").and_then(|t| t.get_mut(k - 1)),
    };
    if let Some(m) = target.and_then(Value::as_object_mut) {
        if stage.is_multiple_of(2) {
            m.insert("token".into(), Value::String(shown));
        }
        if m.contains_key("bytes") {
            m.insert("bytes".into(), Value::Null);
        }
        if stage == 0 && m.contains_key("top_logprobs") {
            m.insert("top_logprobs".into(), Value::Array(Vec::new()));
        }
    }
    e
}

/// The output guard of a stream: rewrites each chunk's deltas; holds back what is not scanned
/// yet; flushes a choice when it finishes, and everything at the end.
#[derive(Debug)]
pub struct StreamShield {
    og: OutputGuard,
    /// Per (choice, text field or tool call).
    filters: HashMap<(u64, Slot), OutputFilter>,
    /// The other strings, held for the gateway's credentials only.
    holds: Holds,
    /// The last chunk's `id`, `object`, `created` and `model`, for a closing chunk of our own.
    envelope: Option<Value>,
    counts: BTreeMap<(Entity, Action), u32>,
    /// What was shown, when the payload log keeps the answer.
    shown: Option<String>,
    /// The choices (indexes) the stream has had: at most [`MAX_STREAM_CHOICES`].
    choices_seen: BTreeSet<u64>,
}

/// The most choices a stream may have (OpenAI's largest `n`). Each choice has its own held
/// texts, flushed one choice at a time at the end: a provider streaming 100,000 indexes held a
/// core for 20 s (an outside attack, 12-04d F7). A stream past it ends with an error.
const MAX_STREAM_CHOICES: usize = 128;

impl StreamShield {
    /// A shield for one stream.
    pub fn new(og: OutputGuard) -> StreamShield {
        StreamShield {
            shown: og.capture.then(String::new),
            og,
            filters: HashMap::new(),
            holds: Holds::default(),
            envelope: None,
            counts: BTreeMap::new(),
            choices_seen: BTreeSet::new(),
        }
    }

    /// Whether the stream needs it at all: a stream's deltas cut a credential into pieces, so
    /// with credentials configured every stream is read.
    pub fn is_active(&self) -> bool {
        self.og.is_active() || !self.og.credentials.is_empty()
    }

    /// One upstream chunk (OpenAI chunk JSON) as the client may see it; a chunk that is not
    /// JSON (not UTF-8, a lone surrogate escape) cannot be guarded: the stream ends there with
    /// `upstream_invalid_response`, never with the chunk dropped in silence.
    pub fn try_rewrite(&mut self, data: &Bytes) -> Result<Bytes, ProviderError> {
        let out = self.rewrite_texts(data)?;
        // A credential anywhere else in the chunk (`model`, `id`, a field no one models).
        if !self.og.credentials.may_be_in_json(&out) {
            return Ok(out);
        }
        let mut v = serde_json::from_slice::<Value>(&out).map_err(unreadable_chunk)?;
        mask_credentials(&mut v, &self.og.credentials, &mut self.counts);
        serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(unreadable_chunk)
    }

    /// [`Self::try_rewrite`], an unreadable chunk shown as `{}` (the tests' shorthand).
    #[cfg(test)]
    pub fn rewrite(&mut self, data: &Bytes) -> Bytes {
        self.try_rewrite(data)
            .unwrap_or_else(|_| Bytes::from_static(b"{}"))
    }

    /// [`Self::try_rewrite`] of the texts the filters hold back: deltas and tool calls.
    fn rewrite_texts(&mut self, data: &Bytes) -> Result<Bytes, ProviderError> {
        let mut v = serde_json::from_slice::<Value>(data).map_err(unreadable_chunk)?;
        let creds_on = !self.og.credentials.is_empty();
        let out = self.og.output();
        // Outside the choices: a provider's own fields, a `choices` that is not an array, a
        // chunk that is not an object — guarded whole, as they come. (Every chunk is written
        // from the tree: a repeated `choices` whose last copy is empty does not send the first
        // out unread.)
        {
            let counts = &mut self.counts;
            let mut guard = |s: &mut Value| {
                guard_whole(&out, counts, s);
            };
            outside_choices(&mut v, &mut guard);
        }
        let mut none = Vec::new();
        let choices = match v.get_mut("choices").and_then(Value::as_array_mut) {
            Some(c) => c,
            None => &mut none,
        };
        for choice in choices.iter_mut() {
            let idx = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            if self.choices_seen.len() >= MAX_STREAM_CHOICES && !self.choices_seen.contains(&idx) {
                return Err(ProviderError::InvalidResponse(format!(
                    "the stream has more than {MAX_STREAM_CHOICES} choices"
                )));
            }
            self.choices_seen.insert(idx);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            // Log probabilities spell the text out token by token, past any mask: not shown
            // when answers are scanned; otherwise held for the credentials like a text.
            if out.scan {
                if let Some(lp) = choice.get_mut("logprobs") {
                    *lp = Value::Null;
                }
            } else if creds_on {
                self.holds.logprobs(&self.og.credentials, idx, choice);
            }
            if creds_on {
                self.holds.choice_rest(&self.og.credentials, idx, choice);
            }
            // Fields of a choice no one models (a provider's extension), a legacy `text`, a
            // `delta` that is not an object, a finish reason that is not one of the tags, a
            // choice that is not an object: guarded whole, as they come.
            let counts = &mut self.counts;
            let mut guard = |s: &mut Value| {
                guard_whole(&out, counts, s);
            };
            match choice.as_object_mut() {
                Some(fields) => {
                    for (k, x) in fields.iter_mut() {
                        match k.as_str() {
                            "logprobs" => {}
                            "delta" if x.is_object() => {}
                            "finish_reason" if x.is_null() || is_tag_value(x) => {}
                            _ => every_string(x, &mut guard),
                        }
                    }
                }
                None => every_string(choice, &mut guard),
            }
            let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            for field in DELTA_TEXTS {
                if let Some(text) = delta_text(delta, field) {
                    let f = self.filters.entry((idx, Slot::Text(field))).or_default();
                    *text = f.feed(&out, text);
                    if let Some(s) = self.shown.as_mut() {
                        s.push_str(text);
                    }
                }
            }
            // Any other text a provider streams (annotations, `reasoning_details`, fields of
            // its own, a role that is not one of the tags): guarded whole, as it comes.
            let counts = &mut self.counts;
            let holds = &mut self.holds;
            let creds = &*self.og.credentials;
            other_delta_strings(delta, &mut |path: &[Step], v: &mut Value| {
                let Value::String(text) = v else { return };
                if !creds.is_empty() {
                    let piece = std::mem::take(text);
                    *text = holds.text(creds, idx, Held::Field(path.to_vec()), piece);
                }
                guard_whole(&out, counts, v);
            });
            let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for call in calls {
                    let tidx = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                    // A call's id and name usually come whole, in one chunk; held for the
                    // credentials in case they do not.
                    for (at, keys) in [
                        ("/id", ["id", ""]),
                        ("/function/name", ["function", "name"]),
                    ] {
                        if let Some(Value::String(x)) = call.pointer_mut(at) {
                            if !self.og.credentials.is_empty() {
                                let piece = std::mem::take(x);
                                let held = Held::Tool(tidx, keys);
                                *x = self.holds.text(&self.og.credentials, idx, held, piece);
                            }
                            let (shown, c) = guard_output(&out, x);
                            for (k, n) in c {
                                *self.counts.entry(k).or_insert(0) += n;
                            }
                            *x = shown;
                        }
                    }
                    if let Some(Value::String(args)) = call.pointer_mut("/function/arguments") {
                        let f = self.filters.entry((idx, Slot::Tool(tidx))).or_default();
                        *args = f.feed(&out, args);
                        if let Some(s) = self.shown.as_mut() {
                            s.push_str(args);
                        }
                    }
                }
            }
            if finished {
                let rest = flush_choice(&mut self.filters, &mut self.counts, &out, idx, delta);
                if let Some(s) = self.shown.as_mut() {
                    s.push_str(&rest);
                }
                if let Some(choice) = choice.as_object_mut() {
                    self.holds
                        .flush(&self.og.credentials, &out, &mut self.counts, idx, choice);
                }
            }
        }
        let mut envelope = serde_json::Map::new();
        for k in ["id", "object", "created", "model", "system_fingerprint"] {
            if let Some(x) = v.get(k) {
                envelope.insert(k.into(), x.clone());
            }
        }
        self.envelope = Some(Value::Object(envelope));
        serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(unreadable_chunk)
    }

    /// The stream ended: a last chunk with whatever is still held, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        let out = self.og.output();
        let mut idxs: Vec<u64> = self.filters.keys().map(|k| k.0).collect();
        idxs.extend(self.holds.choices());
        idxs.sort_unstable();
        idxs.dedup();
        let mut choices = Vec::new();
        for idx in idxs {
            let mut delta = serde_json::Map::new();
            let rest = flush_choice(&mut self.filters, &mut self.counts, &out, idx, &mut delta);
            if let Some(s) = self.shown.as_mut() {
                s.push_str(&rest);
            }
            let mut choice = serde_json::Map::new();
            choice.insert("index".into(), idx.into());
            choice.insert("delta".into(), Value::Object(delta));
            self.holds.flush(
                &self.og.credentials,
                &out,
                &mut self.counts,
                idx,
                &mut choice,
            );
            let empty = choice
                .get("delta")
                .is_none_or(|d| d.as_object().is_some_and(|d| d.is_empty()));
            if !empty || choice.len() > 2 {
                choice.insert("finish_reason".into(), Value::Null);
                choices.push(Value::Object(choice));
            }
        }
        if choices.is_empty() {
            return None;
        }
        let mut chunk = self
            .envelope
            .take()
            .unwrap_or_else(|| serde_json::json!({}));
        chunk["choices"] = Value::Array(choices);
        // The envelope is the provider's (its `model`, `id`): read like every chunk.
        mask_credentials(&mut chunk, &self.og.credentials, &mut self.counts);
        serde_json::to_vec(&chunk).ok().map(Bytes::from)
    }

    /// The answer as the payload log keeps it (after the stream ended), if kept.
    pub fn answer_for_log(&self) -> Option<String> {
        self.shown.as_deref().map(|s| self.og.answer_for_log(s))
    }

    /// What was found (call after the stream ended).
    pub fn report_into(&mut self, report: &mut GuardReport) {
        for f in self.filters.values() {
            for (k, n) in f.counts() {
                *self.counts.entry(*k).or_insert(0) += n;
            }
        }
        self.filters.clear();
        self.holds.close(&mut self.counts);
        report.add("output", &self.counts);
        report.output = self.og.ran();
    }
}

/// Flushes choice `idx`'s filters into `delta` (content appended; tool-call arguments appended
/// to their entry, or a new entry), keeping their counts; gives what was flushed.
fn flush_choice(
    filters: &mut HashMap<(u64, Slot), OutputFilter>,
    counts: &mut BTreeMap<(Entity, Action), u32>,
    out: &Output<'_>,
    idx: u64,
    delta: &mut serde_json::Map<String, Value>,
) -> String {
    let mut flushed = String::new();
    let mut keys: Vec<(u64, Slot)> = filters.keys().filter(|k| k.0 == idx).copied().collect();
    keys.sort_unstable();
    for key in keys {
        let Some(mut f) = filters.remove(&key) else {
            continue;
        };
        let rest = f.finish(out);
        for (k, n) in f.counts() {
            *counts.entry(*k).or_insert(0) += n;
        }
        if rest.is_empty() {
            continue;
        }
        flushed.push_str(&rest);
        match key.1 {
            Slot::Text(field) => append_delta_text(delta, field, &rest),
            Slot::Tool(tidx) => {
                let calls = delta
                    .entry("tool_calls")
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Some(calls) = calls.as_array_mut() else {
                    continue;
                };
                let pos = calls
                    .iter()
                    .position(|c| c.get("index").and_then(Value::as_u64) == Some(tidx));
                match pos {
                    Some(p) => {
                        let before = calls[p]
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        calls[p]["function"]["arguments"] = Value::String(before + &rest);
                    }
                    None => calls
                        .push(serde_json::json!({"index": tidx, "function": {"arguments": rest}})),
                }
            }
        }
    }
    flushed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_guard::{Policy, Tokenizer};

    #[test]
    fn the_report_json_is_what_serde_json_writes_for_it() {
        let mut r = GuardReport {
            input: Ran::Ran,
            output: Ran::NotRun,
            ..GuardReport::default()
        };
        let as_values = |r: &GuardReport| {
            let findings: Vec<Value> = r
                .counts
                .iter()
                .map(|((e, a, d), n)| json!({"type": e.as_str(), "action": a.as_str(), "direction": d, "count": n}))
                .collect();
            json!({"input": r.input.as_str(), "output": r.output.as_str(), "findings": findings})
                .to_string()
        };
        assert_eq!(r.to_json(), as_values(&r));
        r.add(
            "input",
            &BTreeMap::from([
                ((Entity::EmailAddress, Action::Tokenize), 2),
                ((Entity::CreditCard, Action::Block), 1),
            ]),
        );
        r.add(
            "output",
            &BTreeMap::from([((Entity::EmailAddress, Action::Mask), 3)]),
        );
        assert_eq!(r.to_json(), as_values(&r));
        assert!(r.to_json().contains("\"count\":3"));
    }

    fn guard_for(yaml: &str, tokens: SessionTokens) -> OutputGuard {
        let policy = Policy::from_yaml(yaml).unwrap();
        let guard = policy.guard().unwrap();
        OutputGuard {
            gov: Arc::new(Governed {
                policy,
                guard,
                label: "test".into(),
            }),
            hash_key: Arc::from(&b"k"[..]),
            tokens: Arc::new(tokens),
            capture: false,
            credentials: Arc::default(),
        }
    }

    /// The complete answer `body` through `og`, read back as JSON.
    fn answered(og: &OutputGuard, body: &Value, report: &mut GuardReport) -> Value {
        let out = guard_answer(og, Bytes::from(body.to_string()), report).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> Bytes {
        Bytes::from(
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        )
    }

    /// Joins what the client sees of content and of tool call 0's arguments.
    fn seen(frames: &[Bytes]) -> (String, String, Vec<bool>) {
        let (mut content, mut args, mut finished) = (String::new(), String::new(), Vec::new());
        for f in frames {
            let v: Value = serde_json::from_slice(f).unwrap();
            let c = &v["choices"][0];
            content.push_str(c["delta"]["content"].as_str().unwrap_or(""));
            if let Some(a) = c["delta"]["tool_calls"][0]["function"]["arguments"].as_str() {
                args.push_str(a);
            }
            finished.push(!c["finish_reason"].is_null());
        }
        (content, args, finished)
    }

    #[test]
    fn a_stream_is_unmasked_and_guarded_content_and_tool_arguments_alike() {
        let mut t = SessionTokens::default();
        t.token(Entity::EmailAddress, "ann@example.org");
        let mut s = StreamShield::new(guard_for("", t));
        let mut frames = Vec::new();
        for piece in ["Write to <EMAIL_", "ADDRESS_1> or bob@", "example.net now"] {
            frames.push(s.rewrite(&chunk(serde_json::json!({"content": piece}), None)));
        }
        for piece in [
            "{\"to\": \"<EMAIL",
            "_ADDRESS_1>\", \"cc\": \"eve@exam",
            "ple.com\"}",
        ] {
            frames.push(s.rewrite(&chunk(
                serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
            )));
        }
        frames.push(s.rewrite(&chunk(serde_json::json!({}), Some("stop"))));
        assert_eq!(
            s.finish(),
            None,
            "everything went out with the finishing chunk"
        );
        let (content, args, finished) = seen(&frames);
        assert_eq!(content, "Write to ann@example.org or <EMAIL_ADDRESS> now");
        assert_eq!(
            args,
            r#"{"to": "ann@example.org", "cc": "<EMAIL_ADDRESS>"}"#
        );
        assert_eq!(finished.last(), Some(&true));
        let mut report = GuardReport::default();
        s.report_into(&mut report);
        assert_eq!(
            report.counts[&(Entity::EmailAddress, Action::Mask, "output")],
            2
        );
        assert_eq!(report.output, Ran::Ran);
    }

    /// Every text a streamed answer carries is guarded, not only the content: refusals and
    /// reasoning (held back like the content), tool calls' ids and names; log probabilities,
    /// which spell the text out past any mask, are not shown.
    #[test]
    fn a_stream_guards_refusals_reasoning_tool_names_and_drops_logprobs() {
        let mut s = StreamShield::new(guard_for("", SessionTokens::default()));
        let mut frames = Vec::new();
        for (field, piece) in [
            ("refusal", "I cannot mail bob@"),
            ("refusal", "example.net sorry"),
            ("reasoning_content", "the user eve@exa"),
            ("reasoning_content", "mple.com asked"),
        ] {
            frames.push(s.rewrite(&chunk(serde_json::json!({ field: piece }), None)));
        }
        frames.push(s.rewrite(&chunk(
            serde_json::json!({"tool_calls": [{"index": 0, "id": "call_carol@example.org", "function": {"name": "mail_dan@example.org", "arguments": "{}"}}]}),
            None,
        )));
        let mut with_logprobs: Value =
            serde_json::from_slice(&chunk(serde_json::json!({"content": "x"}), None)).unwrap();
        with_logprobs["choices"][0]["logprobs"] =
            serde_json::json!({"content": [{"token": "bob@"}]});
        frames.push(s.rewrite(&Bytes::from(with_logprobs.to_string())));
        frames.push(s.rewrite(&chunk(serde_json::json!({}), Some("stop"))));
        let all: String = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).to_string())
            .collect();
        for value in ["bob@", "eve@", "carol@", "dan@"] {
            assert!(!all.contains(value), "{value} shown: {all}");
        }
        let text = |field: &str| -> String {
            frames
                .iter()
                .map(|f| {
                    let v: Value = serde_json::from_slice(f).unwrap();
                    v["choices"][0]["delta"][field]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        };
        assert_eq!(text("refusal"), "I cannot mail <EMAIL_ADDRESS> sorry");
        assert_eq!(text("reasoning_content"), "the user <EMAIL_ADDRESS> asked");
        let mut report = GuardReport::default();
        s.report_into(&mut report);
        assert_eq!(
            report.counts[&(Entity::EmailAddress, Action::Mask, "output")],
            4
        );
    }

    /// Audio transcripts stream held back like the content (a value cut across chunks is found
    /// whole); every other string a provider puts in a delta — annotations, reasoning details,
    /// fields of its own — is guarded whole; the audio data is left alone.
    #[test]
    fn a_stream_guards_audio_transcripts_and_every_other_delta_string() {
        let mut s = StreamShield::new(guard_for("", SessionTokens::default()));
        let mut frames = Vec::new();
        for piece in ["mail bob@exa", "mple.net today"] {
            frames.push(s.rewrite(&chunk(
                serde_json::json!({"audio": {"id": "au_1", "transcript": piece, "data": "UklGRg=="}}),
                None,
            )));
        }
        frames.push(s.rewrite(&chunk(
            serde_json::json!({
                "annotations": [{"type": "url_citation", "url_citation": {"title": "card 4111 1111 1111 1111"}}],
                "reasoning_details": [{"type": "reasoning.text", "text": "ask eve@example.com"}],
                "thinking": "dan@example.org",
                "x_vendor": {"note": "carol@example.org"}
            }),
            None,
        )));
        frames.push(s.rewrite(&chunk(serde_json::json!({}), Some("stop"))));
        let all: String = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).to_string())
            .collect();
        for value in ["bob@", "4111", "eve@", "dan@", "carol@"] {
            assert!(!all.contains(value), "{value} shown: {all}");
        }
        let transcript: String = frames
            .iter()
            .map(|f| {
                let v: Value = serde_json::from_slice(f).unwrap();
                v["choices"][0]["delta"]["audio"]["transcript"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(transcript, "mail <EMAIL_ADDRESS> today");
        assert!(all.contains("UklGRg=="), "the audio itself is passed on");
        let mut report = GuardReport::default();
        s.report_into(&mut report);
        assert_eq!(
            report.counts[&(Entity::EmailAddress, Action::Mask, "output")],
            4
        );
        assert_eq!(
            report.counts[&(Entity::CreditCard, Action::Mask, "output")],
            1
        );
    }

    /// A complete answer: every string of the message is guarded (content parts, refusal,
    /// reasoning, audio transcript, tool calls' names), and the log probabilities of a choice
    /// whose text changed are dropped.
    #[test]
    fn a_complete_answer_is_guarded_in_every_field() {
        let og = guard_for("", SessionTokens::default());
        let body = serde_json::json!({"id": "c", "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "mail a1@example.org"}],
                "refusal": "not to b2@example.org", "reasoning_content": "c3@example.org asked",
                "audio": {"transcript": "say d4@example.org"},
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "to_e5@example.org", "arguments": "{\"cc\": \"f6@example.org\"}"}}]},
            "logprobs": {"content": [{"token": "a1@"}]}
        }]});
        let mut report = GuardReport::default();
        let out = guard_answer(&og, Bytes::from(body.to_string()), &mut report).unwrap();
        let text = String::from_utf8_lossy(&out);
        for value in ["a1@", "b2@", "c3@", "d4@", "e5@", "f6@"] {
            assert!(!text.contains(value), "{value} shown: {text}");
        }
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["choices"][0]["logprobs"].is_null(), "{v}");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            report.counts[&(Entity::EmailAddress, Action::Mask, "output")],
            6
        );
    }

    /// Without log probabilities and with no escape in a changed text, an answer is read once
    /// without a tree: what changes is written in place, every other byte is the provider's
    /// (spacing, key order, a repeated key — whose every copy is guarded); a changed text that
    /// was escaped, or log probabilities (read by a policy that scans answers, or beside a
    /// change), take the tree pass, with each value counted once either way.
    #[test]
    fn an_answer_is_guarded_in_place_and_counted_once() {
        let og = guard_for("", SessionTokens::default());
        let guarded = |body: &str| {
            let mut report = GuardReport::default();
            let out = guard_answer(&og, Bytes::from(body.to_string()), &mut report).unwrap();
            let n = report
                .counts
                .get(&(Entity::EmailAddress, Action::Mask, "output"))
                .copied()
                .unwrap_or(0);
            (String::from_utf8(out.to_vec()).unwrap(), n)
        };
        // Untouched: the same bytes.
        let plain = r#"{ "id" : "c",  "choices": [ {"message": {"role":"assistant","content":"no one here"}, "logprobs": null} ] }"#;
        assert_eq!(guarded(plain), (plain.to_string(), 0));
        // With log probabilities, which a policy that scans answers reads from the tree: the
        // same answer, written anew.
        let with_lp = plain.replace("null", r#"{"content": [{"token": "no"}]}"#);
        let (out, n) = guarded(&with_lp);
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            serde_json::from_str::<Value>(&with_lp).unwrap()
        );
        assert_eq!(n, 0);
        // Changed in place, the rest as it came; both copies of a repeated key guarded.
        let (out, n) = guarded(
            r#"{ "z" : 1, "choices": [ {"message": {"content":"mail a1@example.org", "content" : "or b2@example.org"}} , {"text":"c3@example.org"} ] }"#,
        );
        assert_eq!(
            out,
            r#"{ "z" : 1, "choices": [ {"message": {"content":"mail <EMAIL_ADDRESS>", "content" : "or <EMAIL_ADDRESS>"}} , {"text":"<EMAIL_ADDRESS>"} ] }"#
        );
        assert_eq!(n, 3);
        // A changed text that was escaped: the tree pass writes the answer.
        let (out, n) = guarded(
            r#"{"choices":[{"message":{"content":"line\nd4@example.org","refusal":"e5@example.org"}}]}"#,
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "line\n<EMAIL_ADDRESS>"
        );
        assert_eq!(v["choices"][0]["message"]["refusal"], "<EMAIL_ADDRESS>");
        assert_eq!(n, 2);
        // A repeated key whose last copy is clean, beside a change the tree pass must make:
        // the answer is written from the tree, without the dropped copies (an outside attack,
        // docs/reviews/attack-2026-12-04c.md F1).
        for body in [
            r#"{"choices":[{"message":{"role":"assistant","content":"mail g7@example.org\u0020","content":"ok"}}]}"#,
            r#"{"choices":[{"message":{"content":"card 4111 1111 1111 1111","content":"ok","refusal":"x\u0020h8@example.org","refusal":null}}]}"#,
            r#"{"choices":[{"message":{"content":"ok","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"to\":\"i9@example.org\"}"}}],"tool_calls":[]}}]}"#,
            r#"{"choices":[{"message":{"content":"g7@example.org","content":"ok"},"logprobs":{"content":[]}}]}"#,
        ] {
            let (out, _) = guarded(body);
            for shown in ["g7@", "h8@", "i9@", "4111"] {
                assert!(!out.contains(shown), "{shown} in {out}");
            }
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["choices"][0]["message"]["content"], "ok", "{out}");
        }
        // Log probabilities spell a changed text out: they go (in the tree pass).
        let (out, n) = guarded(
            r#"{"choices":[{"message":{"content":"f6@example.org"},"logprobs":{"content":[{"token":"f6@"}]}}]}"#,
        );
        assert!(!out.contains("f6@"), "{out}");
        assert_eq!(n, 1);
    }

    /// A `role`, `type` or `finish_reason` that is not one of the tags providers send, and a
    /// field of a choice no one models, are read like the message's texts — by the reading
    /// without a tree and by the tree pass alike; the tags themselves are not read (an outside
    /// attack, docs/reviews/attack-2026-12-04c.md F2).
    #[test]
    fn odd_tags_and_fields_no_one_models_are_read_in_both_passes() {
        let og = guard_for("", SessionTokens::default());
        let guarded = |body: &str| {
            let mut report = GuardReport::default();
            let out = guard_answer(&og, Bytes::from(body.to_string()), &mut report).unwrap();
            String::from_utf8(out.to_vec()).unwrap()
        };
        // Tags, and an extension with nothing in it: the provider's bytes.
        let tags = r#"{"choices":[{"index":0,"finish_reason":"tool_calls","native_finish_reason":"stop","message":{"role":"assistant","content":[{"type":"text","text":"hi"},{"type":"reasoning.text","text":"so"}],"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#;
        assert_eq!(guarded(tags), tags);
        let cases = [
            (
                r#""message":{"content":"ok","type":"a1@example.org"}"#,
                "a1@",
            ),
            // A repeated role: a client keeping the last copy reads the card.
            (
                r#""message":{"role":"assistant","content":"ok","role":"card 4111 1111 1111 1111"}"#,
                "4111",
            ),
            (
                r#""message":{"content":[{"type":"b2@example.org","text":"ok"}]}"#,
                "b2@",
            ),
            (
                r#""finish_reason":"stop","message":{"content":"ok"},"extra":"c3@example.org""#,
                "c3@",
            ),
            (
                r#""message":{"content":"ok"},"x_meta":{"notes":["d4@example.org"]}"#,
                "d4@",
            ),
            (
                r#""finish_reason":"e5@example.org","message":{"content":"ok"}"#,
                "e5@",
            ),
            (
                r#""message":{"role":{"name":"f6@example.org"},"content":"ok"}"#,
                "f6@",
            ),
            // A legacy `text` that is an object or an array; a repeated one (attack 12-04d F1).
            (r#""text":{"v":"g7@example.org"}"#, "g7@"),
            (r#""text":["h8@example.org"]"#, "h8@"),
            (r#""text":{"a":"i9@example.org"},"text":"fine""#, "i9@"),
            // A reasoning tag no provider sends carries what it likes (F5).
            (
                r#""message":{"content":"ok","type":"reasoning.j1@example.org"}"#,
                "j1@",
            ),
        ];
        for (choice, shown) in cases {
            // The reading without a tree, then the tree pass (an escaped change beside it
            // sends the answer there).
            for extra in ["", r#","refusal_note":"x\u0020z9@example.org""#] {
                let body = format!(r#"{{"choices":[{{{choice}{extra}}}]}}"#);
                let out = guarded(&body);
                assert!(!out.contains(shown), "{shown} in {out}");
                assert!(!out.contains("z9@"), "{out}");
                serde_json::from_str::<Value>(&out).unwrap();
            }
        }
        // Outside the choices (F4): a provider's own field, `choices` that is not an array, a
        // choice or a document that is not an object — in both passes. Not `id`, `model` …
        let meta = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"m","system_fingerprint":"fp_1","choices":[],"usage":{"total_tokens":1}}"#;
        assert_eq!(guarded(meta), meta);
        for (body, shown) in [
            (r#"{"id":"c","x_top":"k1@example.org","choices":[]}"#, "k1@"),
            (
                r#"{"citations":[{"snippet":"l2@example.org"}],"choices":[]}"#,
                "l2@",
            ),
            (
                r#"{"choices":{"0":{"message":{"content":"m3@example.org"}}}}"#,
                "m3@",
            ),
            (r#"{"choices":["n4@example.org"]}"#, "n4@"),
            (r#"["o5@example.org"]"#, "o5@"),
        ] {
            // As it is, and escaped (which sends it to the tree pass).
            for body in [body.to_string(), body.replacen('@', "\\u0040", 1)] {
                let out = guarded(&body);
                assert!(!out.contains(shown), "{shown} in {out}");
                assert!(!out.contains("example.org"), "{out}");
            }
        }
    }

    /// In a stream too: a delta's `role` or a part's `type` that is not one of the tags, and a
    /// field of a choice no one models, are read; the tags go out as they came (F2 of the
    /// outside attack of 2026-12-04c).
    #[test]
    fn a_streams_odd_tags_and_fields_no_one_models_are_read() {
        let mut s = StreamShield::new(guard_for("", SessionTokens::default()));
        let mut frames = vec![s.rewrite(&chunk(
            serde_json::json!({"role": "assistant", "content": "hi"}),
            None,
        ))];
        let first: Value = serde_json::from_slice(&frames[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        frames.push(s.rewrite(&chunk(
            serde_json::json!({"role": "card 4111 1111 1111 1111", "content": "ok",
                "annotations": [{"type": "a1@example.org"}, {"type": "url_citation"}]}),
            None,
        )));
        frames.push(
            s.rewrite(&Bytes::from(
                serde_json::json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "!"},
                "finish_reason": null, "x_choice": "b2@example.org"}]})
                .to_string(),
            )),
        );
        // Outside the choices, a choice's legacy `text`, a `delta` or `index` that is not what
        // it should be, `choices` that is not an array, a chunk that is not an object, and a
        // repeated `choices` whose last copy is empty (attack 12-04d F2-F4).
        for chunk in [
            r#"{"id":"c1","x_top":"c3@example.org","choices":[]}"#,
            r#"{"id":"c1","choices":[{"index":0,"text":"d4@example.org"}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":"e5@example.org"}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":["f6@example.org"]}]}"#,
            r#"{"id":"c1","choices":[{"index":"g7@example.org","delta":{}}]}"#,
            r#"{"id":"c1","choices":{"0":{"delta":{"content":"h8@example.org"}}}}"#,
            r#"[{"choices":[{"delta":{"content":"i9@example.org"}}]}]"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"j1@example.org"}}],"choices":[]}"#,
            // A finish reason that is not one of the tags (mutation pass 2026-12-04b).
            r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"k2@example.org"}]}"#,
        ] {
            frames.push(s.rewrite(&Bytes::from(chunk)));
        }
        frames.extend(s.finish());
        let all: String = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        for shown in [
            "4111", "a1@", "b2@", "c3@", "d4@", "e5@", "f6@", "g7@", "h8@", "i9@", "j1@", "k2@",
        ] {
            assert!(!all.contains(shown), "{shown} in {all}");
        }
        assert!(all.contains("url_citation"), "{all}");
        assert!(!all.contains("example.org"), "{all}");
    }

    /// A stream may have up to 128 choices; the next one ends it with an error (a provider
    /// streaming 100,000 indexes held a core for 20 s: attack 12-04d F7).
    #[test]
    fn a_stream_of_too_many_choices_is_an_error() {
        let mut s = StreamShield::new(guard_for("", SessionTokens::default()));
        let piece = |i: u64| {
            Bytes::from(
                serde_json::json!({"choices": [{"index": i, "delta": {"content": "a"}}]})
                    .to_string(),
            )
        };
        for i in 0..128 {
            s.try_rewrite(&piece(i)).unwrap();
        }
        // One already seen is fine; a new one is not.
        s.try_rewrite(&piece(5)).unwrap();
        let e = s.try_rewrite(&piece(128)).unwrap_err();
        assert!(e.to_string().contains("more than 128 choices"), "{e}");
    }

    #[test]
    fn a_stream_that_never_finishes_a_choice_is_flushed_at_its_end() {
        let mut t = SessionTokens::default();
        t.token(Entity::EmailAddress, "ann@example.org");
        let mut s = StreamShield::new(guard_for("", t));
        let mut frames = vec![s.rewrite(&chunk(
            serde_json::json!({"content": "hi <EMAIL_ADDRESS_1>"}),
            None,
        ))];
        frames.extend(s.finish());
        let (content, _, _) = seen(&frames);
        assert_eq!(content, "hi ann@example.org");
        let last: Value = serde_json::from_slice(frames.last().unwrap()).unwrap();
        assert_eq!(
            last["id"], "c1",
            "the closing chunk carries the stream's id"
        );
    }

    const KEY: &str = "Zq7Vx3PLm9TwQe4RkY2b";

    /// A shield whose gateway holds the provider key [`KEY`].
    fn keyed(yaml: &str) -> StreamShield {
        let mut og = guard_for(yaml, SessionTokens::default());
        og.credentials = Arc::new(Credentials::new([KEY]));
        StreamShield::new(og)
    }

    fn frame(v: Value) -> Bytes {
        Bytes::from(v.to_string())
    }

    /// A provider echoing the key one character per chunk — in a tool call's name, in a delta
    /// field of its own, in the log probabilities' tokens when answers are not scanned — never
    /// shows it: the pieces that begin it are held until it is whole, then masked (attack
    /// 2026-12-02 A3). What the client joins shows at most two of its characters, then the mark.
    #[test]
    fn a_credential_cut_one_character_per_chunk_is_masked_in_every_streamed_field() {
        for yaml in ["", "scan: { output: false }"] {
            let mut s = keyed(yaml);
            let mut frames = vec![s.rewrite(&chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f_", "arguments": ""}}]}),
                None,
            ))];
            for c in KEY.chars() {
                let c = c.to_string();
                frames.push(s.rewrite(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"name": c}}]}),
                    None,
                )));
                frames.push(s.rewrite(&chunk(
                    json!({"x_echo": c, "x_deep": {"k": c}, "x_arr": [c, "-"],
                        "annotations": [{"type": "url_citation", "url_citation": {"url": c}}]}),
                    None,
                )));
                let mut v: Value =
                    serde_json::from_slice(&chunk(json!({"content": ""}), None)).unwrap();
                v["choices"][0]["logprobs"] = json!({"content": [{"token": c, "logprob": -0.1, "bytes": c.as_bytes(), "top_logprobs": [{"token": c, "logprob": -0.1}]}]});
                frames.push(s.rewrite(&frame(v)));
            }
            frames.push(s.rewrite(&chunk(json!({"x_echo": "!"}), Some("tool_calls"))));
            frames.extend(s.finish());
            let (mut name, mut echo, mut deep, mut tokens, mut bytes) = (
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                Vec::new(),
            );
            let (mut arr, mut url) = (String::new(), String::new());
            for f in &frames {
                let v: Value = serde_json::from_slice(f).unwrap();
                let c = &v["choices"][0];
                name.push_str(
                    c["delta"]["tool_calls"][0]["function"]["name"]
                        .as_str()
                        .unwrap_or(""),
                );
                echo.push_str(c["delta"]["x_echo"].as_str().unwrap_or(""));
                deep.push_str(c["delta"]["x_deep"]["k"].as_str().unwrap_or(""));
                arr.push_str(c["delta"]["x_arr"][0].as_str().unwrap_or(""));
                url.push_str(
                    c["delta"]["annotations"][0]["url_citation"]["url"]
                        .as_str()
                        .unwrap_or(""),
                );
                for e in c["logprobs"]["content"].as_array().into_iter().flatten() {
                    tokens.push_str(e["token"].as_str().unwrap());
                    for b in e["bytes"].as_array().into_iter().flatten() {
                        bytes.push(b.as_u64().unwrap() as u8);
                    }
                }
            }
            let all: String = frames
                .iter()
                .map(|f| String::from_utf8_lossy(f).to_string())
                .collect();
            assert!(!all.contains(&KEY[..4]), "{yaml}: {all}");
            assert_eq!(name, "f_Zq<SECRET_GENERIC>", "{yaml}");
            assert_eq!(echo, "Zq<SECRET_GENERIC>!", "{yaml}");
            assert_eq!(deep, "Zq<SECRET_GENERIC>", "{yaml}");
            // Strings inside arrays too, held by their place (attack 2026-12-02b B3).
            assert_eq!(arr, "Zq<SECRET_GENERIC>", "{yaml}");
            assert_eq!(url, "Zq<SECRET_GENERIC>", "{yaml}");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&KEY[..4]),
                "{yaml}"
            );
            if yaml.is_empty() {
                assert_eq!(tokens, "", "scanned answers show no log probabilities");
            } else {
                assert_eq!(tokens, "Zq<SECRET_GENERIC>", "{yaml}");
            }
            let mut report = GuardReport::default();
            s.report_into(&mut report);
            let masked = report.counts[&(Entity::SecretGeneric, Action::Mask, "output")];
            assert_eq!(masked, if yaml.is_empty() { 5 } else { 6 }, "{yaml}");
        }
    }

    /// Names and fields that only begin like a credential come out whole and in order — at the
    /// next chunk, or at the choice's end when nothing follows — and ordinary ones at once.
    #[test]
    fn a_start_that_does_not_become_a_credential_comes_out_whole() {
        let mut s = keyed("scan: { output: false }");
        let first = s.rewrite(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        ));
        let v: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        // "Zq7" begins the key: held.
        let held = s.rewrite(&chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "Zq7", "arguments": "{}"}}], "x_echo": "xZq7"}),
            None,
        ));
        let v: Value = serde_json::from_slice(&held).unwrap();
        assert_eq!(
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            ""
        );
        assert_eq!(v["choices"][0]["delta"]["x_echo"], "");
        let last = s.rewrite(&chunk(json!({}), Some("tool_calls")));
        let v: Value = serde_json::from_slice(&last).unwrap();
        let d = &v["choices"][0]["delta"];
        assert_eq!(d["tool_calls"][0]["index"], 1);
        assert_eq!(d["tool_calls"][0]["function"]["name"], "Zq7");
        // The arguments, held by their own filter until the choice ends, come beside it.
        assert_eq!(d["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(d["x_echo"], "xZq7");
        assert_eq!(s.finish(), None, "nothing is left");
    }

    /// What a hold keeps reaches the client even when the finishing chunk has `null` where it
    /// goes, and an occurrence masked only when the choice ends is counted; a choice without a
    /// delta still has its log probabilities read, `bytes` included (review 2026-12-02).
    #[test]
    fn held_text_survives_nulls_and_every_occurrence_is_counted() {
        let mut s = keyed("scan: { output: false }");
        let held = s.rewrite(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "Zq7"}}], "x_echo": format!("{KEY}Zq7"), "x_arr": [1, "Zq7"]}),
            None,
        ));
        let v: Value = serde_json::from_slice(&held).unwrap();
        assert_eq!(v["choices"][0]["delta"]["x_echo"], "");
        assert_eq!(v["choices"][0]["delta"]["x_arr"], json!([1, ""]));
        let mut no_delta: Value = serde_json::from_slice(&chunk(json!({}), None)).unwrap();
        no_delta["choices"][0]
            .as_object_mut()
            .unwrap()
            .remove("delta");
        no_delta["choices"][0]["logprobs"] =
            json!({"content": [{"token": "ok", "logprob": -0.1, "bytes": KEY.as_bytes()}]});
        let lp: Value = serde_json::from_slice(&s.rewrite(&frame(no_delta))).unwrap();
        assert_eq!(lp["choices"][0]["logprobs"]["content"][0]["token"], "ok");
        assert_eq!(
            lp["choices"][0]["logprobs"]["content"][0]["bytes"],
            Value::Null
        );
        let last = s.rewrite(&chunk(
            json!({"tool_calls": null, "x_echo": null}),
            Some("tool_calls"),
        ));
        let v: Value = serde_json::from_slice(&last).unwrap();
        let d = &v["choices"][0]["delta"];
        assert_eq!(d["tool_calls"][0]["function"]["name"], "Zq7", "{v}");
        assert_eq!(d["x_echo"], "<SECRET_GENERIC>Zq7", "{v}");
        assert_eq!(d["x_arr"], json!([null, "Zq7"]), "{v}");
        let mut report = GuardReport::default();
        s.report_into(&mut report);
        assert_eq!(
            report.counts[&(Entity::SecretGeneric, Action::Mask, "output")],
            2,
            "the key in `x_echo`, and the bytes of the log probability"
        );
    }

    /// The key one character per chunk in the `text` of a choice without a delta and in the
    /// delta's `role` — strings clients join — shows at most two of its characters, then the
    /// mark (attack 2026-12-02b B1); the chunk's and the choice's own fields, which clients take
    /// whole, pass chunk by chunk as they came.
    #[test]
    fn a_credential_cut_across_chunks_in_any_field_is_masked() {
        for yaml in ["", "scan: { output: false }"] {
            let mut s = keyed(yaml);
            let mut frames = Vec::new();
            for c in KEY.chars() {
                let c = c.to_string();
                frames.push(s.rewrite(&frame(json!({
                    "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": c, "x_top": {"k": c},
                    "choices": [
                        {"index": 0, "delta": {"role": c}, "finish_reason": null, "x_choice": c},
                        {"index": 1, "text": c, "finish_reason": null}
                    ]
                }))));
                frames.push(s.rewrite(&frame(json!({"x_bare": c, "choices": null}))));
            }
            frames.push(s.rewrite(&chunk(json!({}), Some("stop"))));
            frames.extend(s.finish());
            let mut joined: BTreeMap<&str, String> = BTreeMap::new();
            for f in &frames {
                let v: Value = serde_json::from_slice(f).unwrap();
                let mut add = |name: &'static str, x: &Value| {
                    if let Some(t) = x.as_str() {
                        joined.entry(name).or_default().push_str(t);
                    }
                };
                add("model", &v["model"]);
                add("x_top", &v["x_top"]["k"]);
                add("x_bare", &v["x_bare"]);
                for c in v["choices"].as_array().into_iter().flatten() {
                    if c["index"] == 0 {
                        add("role", &c["delta"]["role"]);
                        add("x_choice", &c["x_choice"]);
                    } else {
                        add("text", &c["text"]);
                    }
                }
            }
            for name in ["role", "text"] {
                assert_eq!(
                    joined.get(name).map(String::as_str),
                    Some("Zq<SECRET_GENERIC>"),
                    "{yaml}: {name} {joined:?}"
                );
            }
            // Fields clients take whole are passed whole, chunk by chunk (a whole key in one is
            // masked by the chunk's search).
            for name in ["model", "x_top", "x_bare", "x_choice"] {
                assert!(joined[name].starts_with(KEY), "{yaml}: {name} {joined:?}");
            }
        }
    }

    /// The key spelled one log probability at a time — by innocent tokens' `bytes`, by the first
    /// or second alternatives' tokens — shows at most two of its characters then the mark, in a
    /// stream (answers not scanned, where log probabilities are shown) and in a complete answer
    /// under either policy (attack 2026-12-02b B2); honest bytes and a token ending inside a
    /// multi-byte character keep theirs.
    #[test]
    fn a_credential_spelled_by_log_probabilities_is_masked() {
        let entry = |c: &str| {
            json!({"token": "a", "logprob": -0.1, "bytes": c.as_bytes(), "top_logprobs": [
                {"token": c, "logprob": -1.0, "bytes": c.as_bytes()},
                {"token": format!("{c}"), "logprob": -2.0}
            ]})
        };
        // What a client joins: the tokens' bytes, and each rank of alternatives.
        let joined = |entries: &[Value]| -> (String, String, String) {
            let (mut bytes, mut first, mut second) = (Vec::new(), String::new(), String::new());
            for e in entries {
                for b in e["bytes"].as_array().into_iter().flatten() {
                    bytes.push(b.as_u64().unwrap() as u8);
                }
                first.push_str(e["top_logprobs"][0]["token"].as_str().unwrap_or(""));
                second.push_str(e["top_logprobs"][1]["token"].as_str().unwrap_or(""));
            }
            (String::from_utf8_lossy(&bytes).into_owned(), first, second)
        };
        // A stream shows two characters before a start is held; a complete answer none.
        let expect = |(bytes, first, second): (String, String, String), shown: &str| {
            assert!(!bytes.contains(&KEY[..3]), "{shown}: {bytes}");
            assert_eq!(first, format!("{shown}<SECRET_GENERIC>"));
            assert_eq!(second, format!("{shown}<SECRET_GENERIC>"));
        };
        let mut s = keyed("scan: { output: false }");
        let mut shown = Vec::new();
        for c in KEY.chars() {
            let mut v: Value =
                serde_json::from_slice(&chunk(json!({"content": ""}), None)).unwrap();
            v["choices"][0]["logprobs"] = json!({"content": [entry(&c.to_string())]});
            let out: Value = serde_json::from_slice(&s.rewrite(&frame(v))).unwrap();
            shown.extend(
                out["choices"][0]["logprobs"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        for f in std::iter::once(s.rewrite(&chunk(json!({}), Some("stop")))).chain(s.finish()) {
            let out: Value = serde_json::from_slice(&f).unwrap();
            shown.extend(
                out["choices"][0]["logprobs"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        assert_eq!(shown.len(), KEY.len(), "every entry is shown once");
        expect(joined(&shown), "Zq");

        for yaml in ["", "scan: { output: false }"] {
            let mut og = guard_for(yaml, SessionTokens::default());
            og.credentials = Arc::new(Credentials::new([KEY]));
            let entries: Vec<Value> = KEY.chars().map(|c| entry(&c.to_string())).collect();
            let body = json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "a".repeat(KEY.len())},
                "logprobs": {"content": entries}
            }]});
            let mut report = GuardReport::default();
            let v = answered(&og, &body, &mut report);
            let entries = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
            expect(joined(entries), "");
            assert_eq!(
                report.counts[&(Entity::SecretGeneric, Action::Mask, "output")],
                3,
                "the bytes, the first alternatives' tokens, the second's"
            );
        }

        // Honest log probabilities pass as they came.
        let og = {
            let mut og = guard_for("", SessionTokens::default());
            og.credentials = Arc::new(Credentials::new([KEY]));
            og
        };
        let body = json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{
            "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hé"},
            "logprobs": {"content": [
                {"token": "h", "logprob": -0.1, "bytes": [104], "top_logprobs": [{"token": "H", "logprob": -2.0, "bytes": [72]}]},
                {"token": "bytes:\\xc3", "logprob": -0.1, "bytes": [195], "top_logprobs": []},
                {"token": "bytes:\\xa9", "logprob": -0.1, "bytes": [169], "top_logprobs": []},
                {"token": " ", "logprob": -0.1, "bytes": [32, 230]},
                {"token": "\\x97\\xa5", "logprob": -0.1, "bytes": [151, 165]}
            ]}
        }]});
        let raw = Bytes::from(body.to_string());
        let out = guard_answer(&og, raw.clone(), &mut GuardReport::default()).unwrap();
        assert_eq!(out, raw);

        // The key in full-width letters, its bytes cut across entries in the middle of
        // characters (review of 2026-12-02, helper 35, 3).
        let wide: String = KEY
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
            .collect();
        let entries: Vec<Value> = wide
            .as_bytes()
            .chunks(2)
            .map(|b| json!({"token": "", "logprob": -0.1, "bytes": b}))
            .collect();
        let body = json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{
            "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"},
            "logprobs": {"content": entries}
        }]});
        let v = answered(&og, &body, &mut GuardReport::default());
        let (bytes, _, _) = joined(v["choices"][0]["logprobs"]["content"].as_array().unwrap());
        let start: String = wide.chars().take(3).collect();
        assert!(!bytes.contains(&start), "{bytes}");
    }

    /// Log probabilities beside a text the guard did not change are read under a policy that
    /// scans answers (attack 2026-12-04d F6): an alternative that completes a value or a denied
    /// term with the chosen tokens around it, tokens that are not the text, and strings in a
    /// shape no one models withhold the choice's log probabilities, and what they showed is
    /// counted; honest ones pass as they came, and a policy that does not scan answers leaves
    /// them.
    #[test]
    fn log_probabilities_beside_an_unchanged_text_are_read() {
        let entry = |t: &str, alternatives: &[&str]| {
            let top: Vec<Value> = alternatives
                .iter()
                .map(|a| json!({"token": a, "logprob": -2.0, "bytes": a.as_bytes()}))
                .collect();
            json!({"token": t, "logprob": -0.1, "bytes": t.as_bytes(), "top_logprobs": top})
        };
        let answer = |content: &str, logprobs: Value| {
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs
            }]})
        };
        let tokens = |list: Vec<Value>| json!({"content": list, "refusal": null});
        let yaml = "guard: { denied_terms: [internal-only] }";
        let og = guard_for(yaml, SessionTokens::default());
        let cases = [
            (
                "an alternative completes an e-mail address",
                answer(
                    "write ann.lee today",
                    tokens(vec![
                        entry("write", &[]),
                        entry(" ann", &[" bob"]),
                        entry(".lee", &["@example.org", ".smith"]),
                        entry(" today", &[]),
                    ]),
                ),
                Entity::EmailAddress,
            ),
            (
                "an alternative completes a denied term",
                answer(
                    "this is internal-use data",
                    tokens(vec![
                        entry("this", &[]),
                        entry(" is", &[]),
                        entry(" internal", &[]),
                        entry("-use", &["-only"]),
                        entry(" data", &[]),
                    ]),
                ),
                Entity::DeniedTerm,
            ),
            (
                "tokens that are not the text",
                answer("hello", tokens(vec![entry("mail b2@example.org", &[])])),
                Entity::EmailAddress,
            ),
            (
                "a shape no one models",
                answer("hello", json!({"x_tokens": ["c3@example.org"]})),
                Entity::EmailAddress,
            ),
        ];
        for (what, body, entity) in &cases {
            let mut report = GuardReport::default();
            let v = answered(&og, body, &mut report);
            assert_eq!(v["choices"][0]["logprobs"], Value::Null, "{what}: {v}");
            assert_eq!(
                v["choices"][0]["message"], body["choices"][0]["message"],
                "{what}: the text is as it came"
            );
            assert!(
                report
                    .counts
                    .keys()
                    .any(|(e, _, d)| e == entity && *d == "output"),
                "{what}: {:?}",
                report.counts
            );
        }
        // Honest ones — alternatives that complete nothing, one far from where it would —
        // pass as they came (the same answer, the same bytes), and nothing is counted.
        for body in [
            answer(
                "hello world",
                tokens(vec![entry("hello", &["hi"]), entry(" world", &[" there"])]),
            ),
            answer(
                "Reply to us",
                tokens(vec![
                    entry("Reply", &["Write"]),
                    entry(" to", &[" @", " at"]),
                    entry(" us", &[" internal"]),
                ]),
            ),
        ] {
            let raw = Bytes::from(body.to_string());
            let mut report = GuardReport::default();
            let out = guard_answer(&og, raw.clone(), &mut report).unwrap();
            assert_eq!(out, raw);
            assert!(report.counts.is_empty(), "{:?}", report.counts);
        }
        // A policy that does not scan answers leaves them.
        let og = guard_for("scan: { output: false }", SessionTokens::default());
        for (what, body, _) in &cases {
            let v = answered(&og, body, &mut GuardReport::default());
            assert_eq!(v, *body, "{what}");
        }
    }

    /// A complete answer that shows the key across blanks — base64 wrapped over lines as MIME
    /// wraps it, the key cut by a line break or spelled with spaces, hex in pairs, with colons,
    /// `0x` or `\x` before each byte — has it masked from its first character to its last in
    /// the content and a tool call's arguments (the words around it kept, as in a stream), and
    /// any other text that shows it withheld whole, under either policy (attack 2026-12-02b
    /// B5); prose whose words do not join into it passes as it came.
    #[test]
    fn a_credential_written_across_blanks_is_masked_in_a_complete_answer() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(KEY);
        let hex: Vec<String> = KEY.bytes().map(|b| format!("{b:02x}")).collect();
        let shown = [
            format!("here: {}\n{} done", &b64[..10], &b64[10..]),
            format!("ans: {}\r\n{}", &b64[..17], &b64[17..]),
            format!("key {} {} end", &KEY[..7], &KEY[7..]),
            KEY.chars().map(|c| format!("{c} ")).collect(),
            format!("dump {}", hex.join(" ")),
            format!("dump {}", hex.join(":").to_uppercase()),
            format!(
                "dump {}",
                hex.iter().map(|h| format!("0x{h} ")).collect::<String>()
            ),
            format!(
                "dump {}",
                hex.iter().map(|h| format!("\\x{h}")).collect::<String>()
            ),
        ];
        for yaml in ["", "scan: { output: false }"] {
            let mut og = guard_for(yaml, SessionTokens::default());
            og.credentials = Arc::new(Credentials::new([KEY]));
            for text in &shown {
                let body = json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{
                    "index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text, "tool_calls": [
                        {"id": "t", "type": "function", "function": {"name": "f",
                         "arguments": json!({"v": text}).to_string()}}]},
                    "logprobs": {"content": [{"token": text, "logprob": -0.1}]}
                }], "x_note": text});
                let mut report = GuardReport::default();
                let v = answered(&og, &body, &mut report);
                let msg = &v["choices"][0]["message"];
                let first_word = text.split(' ').next().unwrap();
                let content = msg["content"].as_str().unwrap();
                let args = msg["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap();
                let args: Value = serde_json::from_str(args).expect("the arguments stay JSON");
                let args = args["v"].as_str().unwrap();
                for shown in [content, args] {
                    assert!(
                        shown.contains("<SECRET_GENERIC>"),
                        "{yaml}: {text:?} → {shown:?}"
                    );
                    assert!(
                        !og.credentials.shows_across_blanks(shown.as_bytes()),
                        "{yaml}: {text:?} → {shown:?}"
                    );
                    if ["here:", "ans:", "key", "dump"].contains(&first_word) {
                        assert!(
                            shown.starts_with(first_word),
                            "{yaml}: {text:?} → {shown:?}"
                        );
                    }
                    assert!(
                        !text.ends_with(" done") || shown.ends_with(" done"),
                        "{yaml}: {text:?} → {shown:?}"
                    );
                }
                // A field outside the choices no one models: read like the message's texts.
                let note = v["x_note"].as_str().unwrap();
                assert!(
                    note.contains("<SECRET_GENERIC>"),
                    "{yaml}: {text:?} → {note:?}"
                );
                assert!(
                    !og.credentials.shows_across_blanks(note.as_bytes()),
                    "{yaml}: {text:?} → {note:?}"
                );
                // The log probabilities spell the text past the mask: not shown.
                assert!(v["choices"][0]["logprobs"].is_null(), "{yaml}: {text:?}");
                assert_eq!(msg["tool_calls"][0]["function"]["name"], "f");
                assert_eq!(
                    report.counts[&(Entity::SecretGeneric, Action::Mask, "output")],
                    3,
                    "{yaml}: {text:?}"
                );
            }
            // Words that do not join into the key, and a key's start alone, pass untouched.
            for text in [
                format!("{} and more {}", &b64[..12], &KEY[..9]),
                "a: b - c 0x1f \\x20 line\nbreak".to_string(),
            ] {
                let body = json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{
                    "index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text}}]});
                let v = answered(&og, &body, &mut GuardReport::default());
                assert_eq!(v["choices"][0]["message"]["content"], text, "{yaml}");
            }
        }
    }

    /// A streamed answer that shows the key across blanks — cut by a line break in the
    /// content, spelled with spaces in a tool call's arguments (written there as JSON escapes),
    /// each arriving a few characters per chunk — has it masked, the words around it shown,
    /// under either policy; the start is held until the rest shows it is the key.
    #[test]
    fn a_credential_written_across_blanks_is_masked_in_a_stream() {
        let content = format!("here it is: {}\n{} and that is all", &KEY[..9], &KEY[9..]);
        let spaced: String = KEY.chars().map(|c| format!("{c} ")).collect();
        let args = json!({"v": format!("key\n{}\ndone", spaced.trim_end())}).to_string();
        for yaml in ["", "scan: { output: false }"] {
            let mut s = keyed(yaml);
            let mut frames = Vec::new();
            for piece in content.as_bytes().chunks(3) {
                let piece = std::str::from_utf8(piece).unwrap();
                // The log probabilities' tokens spell the same text.
                let mut v: Value =
                    serde_json::from_slice(&chunk(json!({"content": piece}), None)).unwrap();
                v["choices"][0]["logprobs"] =
                    json!({"content": [{"token": piece, "logprob": -0.1}]});
                frames.push(s.rewrite(&frame(v)));
            }
            for piece in args.as_bytes().chunks(4) {
                let piece = std::str::from_utf8(piece).unwrap();
                frames.push(s.rewrite(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    None,
                )));
            }
            frames.push(s.rewrite(&chunk(json!({}), Some("stop"))));
            frames.extend(s.finish());
            let (shown, shown_args, _) = seen(&frames);
            assert_eq!(
                shown, "here it is: <SECRET_GENERIC> and that is all",
                "{yaml}"
            );
            assert_eq!(
                shown_args,
                json!({"v": "key\n<SECRET_GENERIC>\ndone"}).to_string(),
                "{yaml}"
            );
            let all: String = frames
                .iter()
                .map(|f| String::from_utf8_lossy(f).to_string())
                .collect();
            assert!(
                !all.contains(&KEY[..9]) && !all.contains(&KEY[9..]),
                "{yaml}: {all}"
            );
            let tokens: String = frames
                .iter()
                .map(|f| serde_json::from_slice::<Value>(f).unwrap())
                .flat_map(|v| {
                    v["choices"][0]["logprobs"]["content"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|e| e["token"].as_str().unwrap().to_string())
                .collect();
            if yaml.is_empty() {
                assert_eq!(tokens, "", "scanned answers show no log probabilities");
            } else {
                // (Its first token, `Zq7`, is held whole: three of its characters.)
                assert_eq!(tokens, "here it is: <SECRET_GENERIC> and that is all");
            }
            let mut report = GuardReport::default();
            s.report_into(&mut report);
            assert_eq!(
                report.counts[&(Entity::SecretGeneric, Action::Mask, "output")],
                if yaml.is_empty() { 2 } else { 3 },
                "{yaml}"
            );
        }
    }

    /// An answer that is not UTF-8, or not JSON (a lone surrogate escape), is a 502
    /// `invalid_response` saying why, under a policy that reads answers and whenever the
    /// gateway's key may be in it (attack 2026-12-02b B7, B8); one the gateway need not read
    /// passes as it came.
    #[test]
    fn an_unreadable_answer_is_a_bad_gateway_saying_why() {
        let og = guard_for("", SessionTokens::default());
        let mut keyed_off = guard_for("scan: { output: false }", SessionTokens::default());
        keyed_off.credentials = Arc::new(Credentials::new([KEY]));
        let not_utf8 =
            Bytes::from_static(b"{\"choices\":[{\"message\":{\"content\":\"caf\xe9\"}}]}");
        let surrogate = format!(
            r#"{{"choices":[{{"message":{{"content":"{}\ud800{}"}}}}]}}"#,
            &KEY[..1],
            &KEY[1..]
        );
        for (og, body, why) in [
            (&og, not_utf8.clone(), "not UTF-8"),
            (&og, Bytes::from(surrogate.clone()), "not valid JSON"),
            (&keyed_off, Bytes::from(surrogate), "not valid JSON"),
        ] {
            let e = guard_answer(og, body, &mut GuardReport::default()).unwrap_err();
            assert_eq!(e.status().as_u16(), 502, "{e}");
            assert_eq!(e.kind(), "invalid_response");
            assert!(e.to_string().contains(why), "{e}");
        }
        let passed = guard_answer(&keyed_off, not_utf8.clone(), &mut GuardReport::default());
        assert_eq!(passed.unwrap(), not_utf8);
    }
}
