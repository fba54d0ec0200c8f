//! `tollgate usecases gate | promote`: a use case's checklist for its next stage, printed line by
//! line with the evidence behind each one, and the gated move itself.

use crate::admin::{Client, print_json, terminal_safe};
use anyhow::bail;
use serde_json::{Value, json};

/// Prints the checklist `GET /use-cases/{id}/gate` answers.
fn print_checklist(g: &Value) {
    let t = |v: &Value| terminal_safe(v.as_str().unwrap_or("-"));
    outln!(
        "Gate to {} for {} (now {}): {}",
        t(&g["to"]),
        t(&g["use_case_id"]),
        t(&g["stage"]),
        if g["met"] == true { "MET" } else { "NOT MET" }
    );
    let lines = g["lines"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        outln!("  (the gate asks for nothing)");
    }
    let width = lines
        .iter()
        .map(|l| l["check"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(0);
    for l in &lines {
        outln!(
            "  [{}] {:<width$}  {}",
            if l["met"] == true { "x" } else { " " },
            t(&l["check"]),
            t(&l["evidence"]),
        );
    }
    if let Some(r) = g["request"].as_object() {
        outln!(
            "Requested by {} at {}: {}",
            terminal_safe(r["requested_by"].as_str().unwrap_or("-")),
            terminal_safe(r["at"].as_str().unwrap_or("-")),
            terminal_safe(r["reason"].as_str().unwrap_or("")),
        );
    }
}

/// `tollgate usecases gate ID [--to STAGE]`.
pub async fn show(c: &Client, id: &str, to: Option<&str>) -> anyhow::Result<()> {
    let path = match to {
        Some(to) => format!("/use-cases/{id}/gate?to={to}"),
        None => format!("/use-cases/{id}/gate"),
    };
    let g = c.get(&path).await?;
    if c.json {
        print_json(&g);
    } else {
        print_checklist(&g);
    }
    Ok(())
}

/// `tollgate usecases promote ID --to STAGE`: the checklist, then the move — refused (an error,
/// exit 1) while a line is unmet, unless a platform admin overrides.
pub async fn promote(
    c: &Client,
    id: &str,
    to: &str,
    reason: &str,
    override_gate: bool,
) -> anyhow::Result<()> {
    let g = c.get(&format!("/use-cases/{id}/gate?to={to}")).await?;
    if !c.json {
        print_checklist(&g);
    }
    let body = json!({"to": to, "reason": reason, "override": override_gate});
    let moved = c.post(&format!("/use-cases/{id}/stage"), body).await;
    match moved {
        Ok(uc) => {
            if c.json {
                print_json(&json!({"gate": g, "use_case": uc}));
            } else if g["met"] == true {
                outln!("Promoted {id} to {to}.");
            } else {
                outln!("Promoted {id} to {to} past the unmet gate (override recorded).");
            }
            Ok(())
        }
        Err(e) => {
            if c.json {
                print_json(&json!({"gate": g}));
            }
            bail!("not promoted: {e}")
        }
    }
}
