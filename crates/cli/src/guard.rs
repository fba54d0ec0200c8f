//! `tollgate guard scan` and `tollgate guard entities`: the guard engine from the command line, for
//! operators trying a policy on their own data and for evaluation harnesses.
//!
//! Input is plain text (a table comes out) or, with `--jsonl`, one `{"id": …, "text": …}` object
//! per line (one JSON line comes out per input line). Either streams: plain text is reported in
//! chunks of about 1 MiB, each scanned with 64 KiB of the text around it, so memory stays flat
//! whatever the input's size and an entity up to 64 KiB long (a PEM key) is found whole across
//! a chunk edge. Offsets are
//! Unicode code points by default (Python string indices), UTF-8 bytes with `--offsets byte`.
//!
//! Bad input never stops a scan: a line that is not JSON (or not UTF-8, or longer than 64 MiB) is
//! reported on stderr with its line number — and, in JSON-lines mode, as an `error` line in its
//! place — the rest is scanned, and the exit status is 1.

use serde::Serialize;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use tollgate_guard::{Action, Entity, Finding, Guard, Policy};

/// `tollgate guard …`.
#[derive(Debug, clap::Subcommand)]
pub enum GuardCommand {
    /// Scan text for personal data, secrets, injection signs and operator terms.
    Scan(ScanArgs),
    /// List the entity types, with their packs.
    Entities,
}

/// `tollgate guard scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The input file (standard input when absent or `-`).
    pub file: Option<PathBuf>,
    /// Read JSON lines `{"id": …, "text": …}` and write one JSON line per input line.
    #[arg(long)]
    pub jsonl: bool,
    /// A policy (YAML): its thresholds decide what is reported, and each finding says what the
    /// policy would do with it (`threshold`, per-type `entities`, `guard`: packs, phone
    /// regions, custom, denied and allowed terms, injection on or off).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Offsets in Unicode code points (as Python string indices) or in UTF-8 bytes.
    #[arg(long, value_enum, default_value_t = Offsets::Char)]
    pub offsets: Offsets,
}

/// How offsets are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Offsets {
    /// Unicode code points.
    Char,
    /// UTF-8 bytes.
    Byte,
}

/// Plain text is reported in chunks of about this many bytes…
const CHUNK: usize = 1 << 20;
/// …each scanned with at least this much text before and after it: context and entities up to
/// this long are seen whole across an edge.
const MARGIN: usize = 64 << 10;
/// The longest JSON line read.
const MAX_LINE: usize = 64 << 20;

/// What a scan went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Texts (JSON lines) or chunks scanned.
    pub inputs: u64,
    /// Findings written.
    pub findings: u64,
    /// Lines that could not be scanned.
    pub bad_lines: u64,
}

/// Runs `tollgate guard …`; the exit status.
pub fn run(command: GuardCommand) -> anyhow::Result<i32> {
    let args = match command {
        GuardCommand::Entities => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<28} PACK", "TYPE")?;
            for e in Entity::ALL {
                let pack = e
                    .pack()
                    .map_or("built in".to_string(), |p| format!("{p:?}").to_lowercase());
                writeln!(out, "{:<28} {pack}", e.as_str())?;
            }
            return Ok(0);
        }
        GuardCommand::Scan(args) => args,
    };
    let policy = match &args.policy {
        Some(path) => read_policy(path)?,
        None => Policy::default(),
    };
    let guard = policy
        .guard()
        .map_err(|e| anyhow::anyhow!("{}: {e}", display(args.policy.as_ref())))?;
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
    };
    let input = std::io::BufReader::with_capacity(256 << 10, input);
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let err = std::io::stderr().lock();
    let scan = Scan {
        guard: &guard,
        policy: &policy,
        offsets: args.offsets,
    };
    let stats = if args.jsonl {
        scan.jsonl(input, out, err)?
    } else {
        scan.text(input, out, err)?
    };
    Ok(i32::from(stats.bad_lines > 0))
}

fn display(p: Option<&PathBuf>) -> String {
    p.map_or("the default policy".into(), |p| p.display().to_string())
}

/// Reads a policy, naming the file and the path of a mistake.
pub fn read_policy(path: &PathBuf) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Policy::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// One finding as written: offsets in the unit asked for. Never the value.
#[derive(Debug, Serialize, PartialEq)]
pub struct Out {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity: Entity,
    /// Start.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// 0.0–1.0.
    pub score: f32,
    /// Confirmed by a checksum or a structural validator.
    pub validated: bool,
    /// The recognizer.
    pub rule: &'static str,
    /// What the policy does with it.
    pub action: Action,
}

/// A scan's guard and output settings.
pub struct Scan<'a> {
    /// The compiled guard.
    pub guard: &'a Guard,
    /// The policy: thresholds, and the action shown per finding.
    pub policy: &'a Policy,
    /// How offsets are counted.
    pub offsets: Offsets,
}

impl Scan<'_> {
    fn find(&self, text: &str) -> Vec<Finding> {
        self.guard
            .scan_with(text, |e| Some(self.policy.threshold(e)))
    }

    /// `findings` of `text` with offsets in the unit asked for, counted from `base` (the offset
    /// of `text`'s start in that unit).
    fn convert(&self, text: &str, findings: &[Finding], base: u64) -> Vec<Out> {
        let mut counter = Counter::new(text, count_chars);
        findings
            .iter()
            .map(|f| {
                let (start, end) = match self.offsets {
                    Offsets::Byte => (f.start as u64, f.end as u64),
                    Offsets::Char => (counter.at(f.start), counter.at(f.end)),
                };
                Out {
                    entity: f.entity,
                    start: base + start,
                    end: base + end,
                    score: (f.score * 100.0).round() / 100.0,
                    validated: f.validated,
                    rule: f.rule,
                    action: self.policy.action(f.entity),
                }
            })
            .collect()
    }

    /// JSON lines in, JSON lines out.
    pub fn jsonl(
        &self,
        mut input: impl BufRead,
        mut out: impl Write,
        mut err: impl Write,
    ) -> std::io::Result<Stats> {
        let mut stats = Stats::default();
        let mut line_no = 0u64;
        let mut buf = Vec::new();
        loop {
            line_no += 1;
            let line = match read_line(&mut input, &mut buf)? {
                Line::End => break,
                Line::TooLong => Err(format!("longer than {} MiB; not scanned", MAX_LINE >> 20)),
                Line::Complete => Ok(&buf),
            };
            let parsed = line.and_then(|bytes| {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1)
                })?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                let v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
                let id = v.get("id").cloned().unwrap_or(serde_json::json!(line_no));
                let Some(t) = v.get("text") else {
                    return Err("no `text` field".to_string());
                };
                let Some(t) = t.as_str() else {
                    return Err("`text` is not a string".to_string());
                };
                Ok(Some((id, t.to_string())))
            });
            match parsed {
                Ok(None) => {}
                Ok(Some((id, text))) => {
                    let findings = self.find(&text);
                    let found = self.convert(&text, &findings, 0);
                    stats.inputs += 1;
                    stats.findings += found.len() as u64;
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"id": id, "findings": found}),
                    )?;
                    out.write_all(b"\n")?;
                }
                Err(message) => {
                    stats.bad_lines += 1;
                    writeln!(err, "line {line_no}: {message}")?;
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"line": line_no, "error": message}),
                    )?;
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()?;
        Ok(stats)
    }

    /// Plain text in, a table out (type, start, end, line, score, validated, rule).
    pub fn text(
        &self,
        mut input: impl Read,
        mut out: impl Write,
        mut err: impl Write,
    ) -> std::io::Result<Stats> {
        let mut stats = Stats::default();
        let unit = match self.offsets {
            Offsets::Char => "chars",
            Offsets::Byte => "bytes",
        };
        writeln!(
            out,
            "{:<26} {:>12} {:>12} {:>8} {:>5}  {:<9} {:<8} RULE   (offsets in {unit})",
            "TYPE", "START", "END", "LINE", "SCORE", "VALIDATED", "ACTION"
        )?;
        // `window` holds the text from `window_at` (a byte offset of the input); the part from
        // `report_from` on is reported next. `lines_at`, `chars_at`: lines before `window_at`
        // and its offset in the unit asked for.
        let mut window: Vec<u8> = Vec::with_capacity(CHUNK + 2 * MARGIN);
        let (mut window_at, mut report_from) = (0u64, 0usize);
        let (mut lines_at, mut chars_at) = (0u64, 0u64);
        let mut checked = 0usize; // bytes of `window` already checked for UTF-8
        let mut eof = false;
        while !eof || report_from < window.len() {
            // Fill to a chunk past what is reported, plus two margins after it.
            while !eof && window.len() < report_from + CHUNK + 2 * MARGIN {
                let before = window.len();
                window.resize(before + (64 << 10), 0);
                let n = input.read(&mut window[before..])?;
                window.truncate(before + n);
                eof = n == 0;
            }
            // What is scanned ends at the window's last line end (or, in a long line, before
            // its last character, which may not be complete yet); lines that are not UTF-8 are
            // blanked there (same length: offsets hold) and reported.
            let scan_to = if eof {
                window.len()
            } else {
                let tail = window.len() - MARGIN;
                match window[tail..].iter().rposition(|&c| c == b'\n') {
                    Some(i) => tail + i + 1,
                    None => last_char_start(&window),
                }
            };
            if scan_to > checked {
                let from_line = lines_at + count_lines(&window[..checked]);
                stats.bad_lines +=
                    blank_invalid_lines(&mut window[checked..scan_to], from_line, &mut err)?;
                checked = scan_to;
            }
            // The reported part ends at a line end a chunk on, at least a margin before the end
            // of what is scanned (so what starts in it is seen whole); the last one at the end.
            let report_to = if eof {
                window.len()
            } else {
                floor_char(
                    &window,
                    cut_at_line(&window, report_from + CHUNK).min(scan_to - MARGIN),
                )
            };
            let text = std::str::from_utf8(&window[..scan_to])
                .map_err(|e| std::io::Error::other(format!("internal: window not UTF-8: {e}")))?;
            let findings: Vec<Finding> = self
                .find(text)
                .into_iter()
                .filter(|f| f.start >= report_from && f.start < report_to)
                .collect();
            stats.inputs += 1;
            let outs = self.convert(text, &findings, 0);
            let mut lines = Counter::new(text, count_lines);
            for (f, o) in findings.iter().zip(&outs) {
                let (start, end) = match self.offsets {
                    Offsets::Byte => (window_at + o.start, window_at + o.end),
                    Offsets::Char => (chars_at + o.start, chars_at + o.end),
                };
                writeln!(
                    out,
                    "{:<26} {:>12} {:>12} {:>8} {:>5.2}  {:<9} {:<8} {}",
                    o.entity.as_str(),
                    start,
                    end,
                    lines_at + lines.at(f.start) + 1,
                    o.score,
                    if o.validated { "yes" } else { "no" },
                    o.action.as_str(),
                    o.rule
                )?;
                stats.findings += 1;
            }
            if report_to >= window.len() && eof {
                break;
            }
            // Keep a margin before the next reported part; drop the rest.
            let keep_from = floor_char(&window, report_to.saturating_sub(MARGIN));
            lines_at += count_lines(&window[..keep_from]);
            chars_at += match self.offsets {
                Offsets::Byte => keep_from as u64,
                Offsets::Char => count_chars(&window[..keep_from]),
            };
            window_at += keep_from as u64;
            window.drain(..keep_from);
            report_from = report_to - keep_from;
            checked -= keep_from;
        }
        writeln!(
            err,
            "{} finding(s){}",
            stats.findings,
            if stats.bad_lines > 0 {
                format!("; {} line(s) not scanned", stats.bad_lines)
            } else {
                String::new()
            }
        )?;
        out.flush()?;
        Ok(stats)
    }
}

/// How a JSON line ended.
enum Line {
    Complete,
    TooLong,
    End,
}

/// Reads one line (without its `\n`) into `buf`, at most [`MAX_LINE`] bytes; a longer one is
/// consumed and dropped.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !too_long && buf.len() + take <= MAX_LINE {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
            buf.clear();
        }
        input.consume(take + usize::from(done));
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            Line::Complete
        }
    })
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The first line end at or after `at` (just past its `\n`), within a chunk; else a character
/// boundary at `at`.
fn cut_at_line(b: &[u8], at: usize) -> usize {
    let at = at.min(b.len());
    match memchr(b'\n', &b[at..(at + CHUNK).min(b.len())]) {
        Some(i) => at + i + 1,
        None => floor_char(b, at),
    }
}

/// The start of the last character of `b` (which may be incomplete).
fn last_char_start(b: &[u8]) -> usize {
    let mut at = b.len();
    while at > 0 && b.len() - at < 4 {
        at -= 1;
        if b[at] & 0xC0 != 0x80 {
            break;
        }
    }
    at
}

/// `at`, moved back to the start of the UTF-8 sequence it falls in.
fn floor_char(b: &[u8], mut at: usize) -> usize {
    at = at.min(b.len());
    let mut back = 0;
    while at > 0 && at < b.len() && b[at] & 0xC0 == 0x80 && back < 3 {
        at -= 1;
        back += 1;
    }
    at
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Code points of valid UTF-8 (every byte that starts one).
fn count_chars(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c & 0xC0 != 0x80).count() as u64
}

/// Replaces each line of `b` that is not UTF-8 with spaces (its `\n` kept), reporting it; the
/// number of such lines. `first_line` is the 0-based number of `b`'s first line.
fn blank_invalid_lines(
    b: &mut [u8],
    first_line: u64,
    err: &mut impl Write,
) -> std::io::Result<u64> {
    let mut bad = 0;
    let mut line = first_line;
    let mut start = 0;
    while start < b.len() {
        let end = memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
        if let Err(e) = std::str::from_utf8(&b[start..end]) {
            writeln!(
                err,
                "line {}: not valid UTF-8 (byte {} of the line); the line is not scanned",
                line + 1,
                e.valid_up_to() + 1
            )?;
            b[start..end].fill(b' ');
            bad += 1;
        }
        line += 1;
        start = end + 1;
    }
    Ok(bad)
}

/// Counts something — code points, line ends — in one text up to byte offsets asked for in
/// ascending order (each byte is read once; a smaller offset starts over).
struct Counter<'a> {
    bytes: &'a [u8],
    byte: usize,
    count: u64,
    of: fn(&[u8]) -> u64,
}

impl<'a> Counter<'a> {
    fn new(text: &'a str, of: fn(&[u8]) -> u64) -> Self {
        Counter {
            bytes: text.as_bytes(),
            byte: 0,
            count: 0,
            of,
        }
    }

    /// The count in `text[..at]`.
    fn at(&mut self, at: usize) -> u64 {
        if at < self.byte {
            self.byte = 0;
            self.count = 0;
        }
        self.count += (self.of)(&self.bytes[self.byte..at]);
        self.byte = at;
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` with a default guard and policy: (stdout, stderr, stats).
    fn with_scan(
        offsets: Offsets,
        f: impl FnOnce(&Scan<'_>, &mut Vec<u8>, &mut Vec<u8>) -> std::io::Result<Stats>,
    ) -> (String, String, Stats) {
        let guard = Guard::new(Default::default()).unwrap();
        let policy = Policy::default();
        let scan = Scan {
            guard: &guard,
            policy: &policy,
            offsets,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let stats = f(&scan, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            stats,
        )
    }

    fn scan_jsonl(input: &[u8], offsets: Offsets) -> (Vec<serde_json::Value>, String, Stats) {
        let (out, err, stats) = with_scan(offsets, |s, out, err| s.jsonl(input, out, err));
        let lines = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, err, stats)
    }

    fn scan_text(input: &[u8], offsets: Offsets) -> (Vec<Vec<String>>, String, Stats) {
        let (out, err, stats) = with_scan(offsets, |s, out, err| s.text(input, out, err));
        let rows = out
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        (rows, err, stats)
    }

    #[test]
    fn jsonl_offsets_are_code_points_or_bytes_and_ids_pass_through() {
        let input = "{\"id\": \"a\", \"text\": \"écrire à jane.doe@example.com\"}\n{\"id\": 7, \"text\": \"nothing here\", \"label\": []}\n";
        let (lines, err, stats) = scan_jsonl(input.as_bytes(), Offsets::Char);
        assert_eq!(err, "");
        assert_eq!(stats.inputs, 2);
        assert_eq!(lines[0]["id"], "a");
        let f = &lines[0]["findings"][0];
        assert_eq!(f["type"], "EMAIL_ADDRESS");
        // "écrire à " is 9 code points and 11 bytes.
        assert_eq!(
            (f["start"].as_u64(), f["end"].as_u64()),
            (Some(9), Some(29))
        );
        assert_eq!(f["validated"], true);
        assert!(f.get("value").is_none() && !lines[0].to_string().contains("jane"));
        assert_eq!(lines[1], serde_json::json!({"id": 7, "findings": []}));
        let (lines, _, _) = scan_jsonl(input.as_bytes(), Offsets::Byte);
        let f = &lines[0]["findings"][0];
        assert_eq!(
            (f["start"].as_u64(), f["end"].as_u64()),
            (Some(11), Some(31))
        );
    }

    #[test]
    fn bad_jsonl_lines_are_reported_with_their_number_and_the_rest_is_scanned() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"id\": 1, \"text\": \"a@b\"}\n");
        input.extend_from_slice(b"not json\n");
        input.extend_from_slice(b"{\"id\": 3, \"text\": \"caf\xff\"}\n");
        input.extend_from_slice(b"\n");
        input.extend_from_slice(b"{\"id\": 5}\n");
        input.extend_from_slice(b"{\"id\": 6, \"text\": 12}\n");
        input.extend_from_slice(b"{\"id\": 7, \"text\": \"mail jane@example.org\"}");
        let (lines, err, stats) = scan_jsonl(&input, Offsets::Char);
        assert_eq!(stats.bad_lines, 4, "{err}");
        assert_eq!(stats.inputs, 2);
        let errors: Vec<&str> = err.lines().collect();
        assert!(errors[0].starts_with("line 2: not JSON"), "{err}");
        assert!(
            errors[1].starts_with("line 3: not valid UTF-8 (byte"),
            "{err}"
        );
        assert_eq!(errors[2], "line 5: no `text` field");
        assert_eq!(errors[3], "line 6: `text` is not a string");
        assert_eq!(
            lines.len(),
            6,
            "one line out per line in, blank lines aside"
        );
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[5]["id"], 7);
        assert_eq!(lines[5]["findings"][0]["type"], "EMAIL_ADDRESS");
    }

    #[test]
    fn an_overlong_jsonl_line_is_skipped_and_the_next_is_read() {
        let mut input = Vec::with_capacity(MAX_LINE + 100);
        input.extend_from_slice(b"{\"text\": \"");
        input.resize(MAX_LINE + 10, b'x');
        input.extend_from_slice(b"\"}\n{\"id\": 2, \"text\": \"jane@example.org\"}\n");
        let (lines, err, stats) = scan_jsonl(&input, Offsets::Char);
        assert_eq!(stats.bad_lines, 1);
        assert!(err.starts_with("line 1: longer than 64 MiB"), "{err}");
        assert_eq!(lines[1]["id"], 2);
        assert_eq!(lines[1]["findings"].as_array().unwrap().len(), 1);
    }

    /// An e-mail at every distance from a chunk edge is reported exactly once, at its offset.
    #[test]
    fn plain_text_across_chunk_edges_reports_each_finding_once() {
        let line = "some words to fill a line of text here ok\n"; // 42 bytes
        let mut text = String::new();
        let mut want = Vec::new();
        while text.len() < 3 * CHUNK + 3 * MARGIN {
            if text.len() % (7 * 1024) < line.len() {
                // One e-mail per 7 KiB or so, at varying columns.
                let col = want.len() % 30;
                let at = text.len() + col;
                text.push_str(&" ".repeat(col));
                text.push_str("jane.doe@example.com\n");
                want.push(at);
            } else {
                text.push_str(line);
            }
        }
        // A multi-byte character first so code points and bytes differ (a word of its own: a
        // letter next to an address belongs to it).
        let text = format!("é {text}");
        let (rows, _, stats) = scan_text(text.as_bytes(), Offsets::Byte);
        assert!(stats.inputs >= 3, "{stats:?}");
        let got: Vec<usize> = rows
            .iter()
            .filter(|r| r[0] == "EMAIL_ADDRESS")
            .map(|r| r[1].parse().unwrap())
            .collect();
        let want_bytes: Vec<usize> = want.iter().map(|w| w + 3).collect();
        assert_eq!(got, want_bytes);
        let (rows, _, _) = scan_text(text.as_bytes(), Offsets::Char);
        let got: Vec<usize> = rows
            .iter()
            .filter(|r| r[0] == "EMAIL_ADDRESS")
            .map(|r| r[1].parse().unwrap())
            .collect();
        let want_chars: Vec<usize> = want.iter().map(|w| w + 2).collect();
        assert_eq!(got, want_chars);
        // Line numbers: the first e-mail is on line 1, and lines count on across chunks.
        let first_line: u64 = rows[0][3].parse().unwrap();
        assert_eq!(first_line, 1);
        let last = rows.last().unwrap();
        let end: usize = last[1].parse().unwrap();
        let line_no: u64 = last[3].parse().unwrap();
        let chars: Vec<char> = text.chars().collect();
        let expected = 1 + chars[..end].iter().filter(|&&c| c == '\n').count() as u64;
        assert_eq!(line_no, expected);
    }

    /// One long line (no line ends to cut at): chunks are cut inside it, and an e-mail that a
    /// cut falls in is still reported once, whole.
    #[test]
    fn one_long_line_is_cut_between_characters_and_loses_nothing() {
        // Nothing but e-mails: wherever a cut falls, it is almost surely inside one.
        let email = "jane.doe@example.com ";
        let n = (3 * CHUNK + 3 * MARGIN) / email.len();
        let text = format!("ü {}", email.repeat(n));
        let want: Vec<usize> = (0..n).map(|i| 2 + i * email.len()).collect();
        let (rows, _, stats) = scan_text(text.as_bytes(), Offsets::Char);
        assert!(stats.inputs >= 3, "{stats:?}");
        let got: Vec<usize> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
        assert!(rows.iter().all(|r| r[0] == "EMAIL_ADDRESS"));
        assert_eq!(got.len(), want.len());
        assert!(
            got == want,
            "first difference at {:?}",
            got.iter().zip(&want).position(|(a, b)| a != b)
        );
        assert!(
            rows.iter()
                .all(|r| r[2].parse::<usize>().unwrap() - r[1].parse::<usize>().unwrap() == 20)
        );
    }

    #[test]
    fn a_plain_text_line_that_is_not_utf8_is_reported_and_the_rest_scanned_at_stable_offsets() {
        let mut input = Vec::new();
        input.extend_from_slice(b"first jane@example.org\n");
        input.extend_from_slice(b"bad \xc3\x28 line bob@example.org\n");
        input.extend_from_slice(b"third ann@example.org\n");
        let (rows, err, stats) = scan_text(&input, Offsets::Byte);
        assert_eq!(stats.bad_lines, 1);
        assert!(
            err.contains("line 2: not valid UTF-8 (byte 5 of the line)"),
            "{err}"
        );
        let starts: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        let third = input.windows(3).position(|w| w == b"ann").unwrap();
        assert_eq!(starts, vec!["6", &third.to_string()]);
        assert_eq!(rows[1][3], "3", "the third line");
    }

    #[test]
    fn empty_input_has_only_the_header() {
        let (rows, err, stats) = scan_text(b"", Offsets::Char);
        assert!(rows.is_empty());
        assert_eq!(stats.findings, 0);
        assert_eq!(err, "0 finding(s)\n");
    }
}
