//! A run's report as people and CI tools read it: the matrix (cases × routes) as text, and JUnit
//! XML (one `testsuite` per route, one `testcase` per test and prompt). JSON is the report's
//! serde form.

use crate::run::{RunReport, Status};
use crate::text::{clip, usd};
use std::fmt::Write as _;

/// The matrix: one row per test and prompt, one column per route, each cell the case's status
/// and score; then the totals.
pub fn matrix(report: &RunReport) -> String {
    let routes: Vec<&str> = report
        .summary
        .routes
        .iter()
        .map(|r| r.route.as_str())
        .collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for c in &report.cases {
        let label = format!(
            "{} · {}",
            c.description
                .clone()
                .unwrap_or_else(|| format!("tests[{}]", c.test)),
            c.prompt
        );
        let cell = match c.status {
            Status::Pass => format!("PASS {:.2}", c.score),
            Status::Fail => format!("FAIL {:.2}", c.score),
            Status::Error => "ERROR".to_string(),
        };
        match rows.last_mut() {
            Some((l, cells)) if *l == label && cells.len() < routes.len() => cells.push(cell),
            _ => rows.push((label, vec![cell])),
        }
    }
    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count().min(60))
        .max()
        .unwrap_or(4)
        .max(4);
    let col_w: Vec<usize> = routes.iter().map(|r| r.chars().count().max(10)).collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_w$}", "case");
    for (r, w) in routes.iter().zip(&col_w) {
        let _ = write!(out, "  {r:w$}");
    }
    out.push('\n');
    for (label, cells) in &rows {
        let _ = write!(out, "{:label_w$}", clip(label, 60));
        for (cell, w) in cells.iter().zip(&col_w) {
            let _ = write!(out, "  {cell:w$}");
        }
        out.push('\n');
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} cases: {} passed, {} failed, {} errors — pass rate {:.1} % (needs {:.1} %): {}",
        s.cases,
        s.passed,
        s.failed,
        s.errors,
        s.pass_rate * 100.0,
        s.threshold * 100.0,
        if s.passed_threshold {
            "PASSED"
        } else {
            "FAILED"
        }
    );
    for r in &s.routes {
        let _ = writeln!(
            out,
            "  {}: {}/{} passed ({:.1} %), ${}",
            r.route,
            r.passed,
            r.cases,
            r.pass_rate * 100.0,
            usd(r.cost_nano_usd)
        );
    }
    let _ = writeln!(
        out,
        "cost: ${} for the cases + ${} for judging and embeddings{}",
        usd(s.cost_nano_usd),
        usd(s.scoring_cost_nano_usd),
        if s.unpriced > 0 {
            format!(" ({} answers unpriced)", s.unpriced)
        } else {
            String::new()
        }
    );
    out
}

/// JUnit XML: `<testsuites>` with one `<testsuite>` per route and one `<testcase>` per test and
/// prompt; failed cases carry `<failure>`, cases that could not be judged `<error>`.
pub fn junit(report: &RunReport, name: &str) -> String {
    let s = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_ms: u64 = report.cases.iter().map(|c| c.latency_ms).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        xml(name),
        s.cases,
        s.failed,
        s.errors,
        total_ms as f64 / 1000.0
    );
    for r in &s.routes {
        let mine: Vec<_> = report.cases.iter().filter(|c| c.route == r.route).collect();
        let failures = mine.iter().filter(|c| c.status == Status::Fail).count();
        let errors = mine.iter().filter(|c| c.status == Status::Error).count();
        let ms: u64 = mine.iter().map(|c| c.latency_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
            xml(&r.route),
            mine.len(),
            ms as f64 / 1000.0
        );
        for c in mine {
            let case_name = format!(
                "{} [{}]",
                c.description
                    .clone()
                    .unwrap_or_else(|| format!("tests[{}]", c.test)),
                c.prompt
            );
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{:.3}\"",
                xml(&case_name),
                xml(name),
                xml(&r.route),
                c.latency_ms as f64 / 1000.0
            );
            match c.status {
                Status::Pass => out.push_str("/>\n"),
                Status::Fail => {
                    let failed: Vec<String> = c
                        .assertions
                        .iter()
                        .filter(|a| !a.pass && a.weight > 0.0)
                        .map(|a| format!("{}: {}", a.type_name, a.reason))
                        .collect();
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml(&format!("score {:.2}", c.score)),
                        xml(&failed.join("\n"))
                    );
                }
                Status::Error => {
                    let _ = write!(
                        out,
                        ">\n      <error message=\"{}\"/>\n    </testcase>\n",
                        xml(c.error.as_deref().unwrap_or("error"))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text made safe for XML attributes and content: the five escapes, and characters XML 1.0 does
/// not allow (most control characters, which model output can contain) replaced by U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || matches!(c as u32, 0xFFFE | 0xFFFF) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
