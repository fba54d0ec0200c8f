//! The portfolio: every use case placed by value and feasibility, a priority from the registry's
//! 1–5 scores under configurable weights, quadrants, the stage pipeline, and the value-versus-
//! feasibility bubble chart as SVG (bubble area = spend, colour = stage).

use serde::Serialize;
use tollgate_store::{Scores, Stage};

/// Weights of the priority score (any non-negative numbers; they are normalized).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Weights {
    /// Business impact.
    pub impact: f64,
    /// Technical feasibility.
    pub feasibility: f64,
    /// Data readiness.
    pub data_readiness: f64,
    /// Risk (inverse: a riskier use case scores lower).
    pub risk: f64,
    /// Time to impact.
    pub time_to_impact: f64,
}

impl Default for Weights {
    /// Impact 35 %, feasibility 25 %, data readiness 20 %, risk 10 %, time to impact 10 % — the
    /// typical weights of the prioritization frameworks the reference cites.
    fn default() -> Self {
        Weights {
            impact: 35.0,
            feasibility: 25.0,
            data_readiness: 20.0,
            risk: 10.0,
            time_to_impact: 10.0,
        }
    }
}

/// A caller's text as an error quotes it: never at length.
fn shown(s: &str) -> String {
    tollgate_types::text::clip(s, tollgate_types::text::ECHO_CHARS)
}

impl Weights {
    /// The weights named in `spec` (`impact=40,risk=20`), the others at their defaults; an
    /// unknown name or a value that is not a non-negative number is an error naming it.
    pub fn parse(spec: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        let mut named: Vec<&str> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once(['=', ':'])
                .ok_or_else(|| format!("`{}` is not name=weight", shown(part)))?;
            if named.contains(&name.trim()) {
                // Which of two would count is a guess either way: neither is taken.
                return Err(format!(
                    "the weight of `{}` is given twice",
                    shown(name.trim())
                ));
            }
            named.push(name.trim());
            let v: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= 1_000.0)
                .ok_or_else(|| {
                    format!(
                        "the weight of `{}` must be a number from 0 to 1000",
                        shown(name.trim())
                    )
                })?;
            match name.trim() {
                "impact" => w.impact = v,
                "feasibility" => w.feasibility = v,
                "data_readiness" => w.data_readiness = v,
                "risk" => w.risk = v,
                "time_to_impact" => w.time_to_impact = v,
                other => {
                    return Err(format!(
                        "unknown weight `{}`: impact, feasibility, data_readiness, risk or time_to_impact",
                        shown(other)
                    ));
                }
            }
        }
        if w.total() == 0.0 {
            return Err("at least one weight must be above 0".into());
        }
        Ok(w)
    }

    fn total(&self) -> f64 {
        self.impact + self.feasibility + self.data_readiness + self.risk + self.time_to_impact
    }
}

/// Priority 0–100: each score mapped from 1–5 to 0–1 (risk inverted), weighted, normalized.
/// (Each weight is divided by their total first: a weight as small as a float allows, alone,
/// still counts whole — multiplied first, it would vanish below the smallest float.)
pub fn priority(s: &Scores, w: &Weights) -> f64 {
    let n = |x: u8| (f64::from(x.clamp(1, 5)) - 1.0) / 4.0;
    let t = w.total();
    let sum = w.impact / t * n(s.impact)
        + w.feasibility / t * n(s.feasibility)
        + w.data_readiness / t * n(s.data_readiness)
        + w.risk / t * (1.0 - n(s.risk))
        + w.time_to_impact / t * n(s.time_to_impact);
    100.0 * sum
}

/// The mean of two scores weighted `a` and `b` (`a + b` above 0), each weight divided by their
/// total first, as in [`priority`].
fn weighted(a: f64, x: u8, b: f64, y: u8) -> f64 {
    let t = a + b;
    a / t * f64::from(x) + b / t * f64::from(y)
}

/// Value (1–5): impact and time to impact, weighted as in `w`.
pub fn value_score(s: &Scores, w: &Weights) -> f64 {
    if w.impact + w.time_to_impact == 0.0 {
        return f64::from(s.impact);
    }
    weighted(w.impact, s.impact, w.time_to_impact, s.time_to_impact)
}

/// Feasibility (1–5): feasibility and data readiness, weighted as in `w`.
pub fn feasibility_score(s: &Scores, w: &Weights) -> f64 {
    if w.feasibility + w.data_readiness == 0.0 {
        return f64::from(s.feasibility);
    }
    weighted(
        w.feasibility,
        s.feasibility,
        w.data_readiness,
        s.data_readiness,
    )
}

/// Where a use case falls: value and feasibility each high from 3 (the middle of 1–5) up.
pub fn quadrant(value: f64, feasibility: f64) -> &'static str {
    match (value >= 3.0, feasibility >= 3.0) {
        (true, true) => "quick_win",
        (true, false) => "strategic_bet",
        (false, true) => "fill_in",
        (false, false) => "deprioritize",
    }
}

/// One use case on the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bubble {
    /// `uc_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its pod.
    pub pod_id: String,
    /// Its stage.
    pub stage: Stage,
    /// Value, 1–5.
    pub value: f64,
    /// Feasibility, 1–5.
    pub feasibility: f64,
    /// Priority, 0–100.
    pub priority: f64,
    /// `quick_win`, `strategic_bet`, `fill_in` or `deprioritize`.
    pub quadrant: &'static str,
    /// Spend over the report's window, nano-USD (the bubble's area).
    pub spend_nano_usd: u64,
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Proposed => "proposed",
        Stage::Pilot => "pilot",
        Stage::Production => "production",
        Stage::Retired => "retired",
    }
}

fn stage_colour(s: Stage) -> &'static str {
    match s {
        Stage::Proposed => "#9e9e9e",
        Stage::Pilot => "#f59e0b",
        Stage::Production => "#16a34a",
        Stage::Retired => "#6b7280",
    }
}

/// Text for an XML attribute or element.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow are left out.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The value-versus-feasibility chart as a standalone SVG document: one `<circle>` per use case
/// (area proportional to spend, at least a dot; colour by stage; its name in a `<title>`), the
/// four quadrants labelled, a legend of stages.
pub fn svg(bubbles: &[Bubble], title: &str) -> String {
    const W: f64 = 800.0;
    const H: f64 = 600.0;
    const PAD: f64 = 70.0;
    let x = |f: f64| PAD + (f.clamp(1.0, 5.0) - 1.0) / 4.0 * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - (v.clamp(1.0, 5.0) - 1.0) / 4.0 * (H - 2.0 * PAD);
    let max_spend = bubbles.iter().map(|b| b.spend_nano_usd).max().unwrap_or(0);
    let mut s = String::new();
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!("<title>{}</title>\n", xml(title)));
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\n"
    ));
    // Quadrants: the middle lines at 3.
    let (mx, my) = (x(3.0), y(3.0));
    s.push_str(&format!(
        "<line x1=\"{mx}\" y1=\"{PAD}\" x2=\"{mx}\" y2=\"{}\" stroke=\"#cbd5e1\" stroke-dasharray=\"4 4\"/>\n",
        H - PAD
    ));
    s.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{my}\" x2=\"{}\" y2=\"{my}\" stroke=\"#cbd5e1\" stroke-dasharray=\"4 4\"/>\n",
        W - PAD
    ));
    for (label, lx, ly) in [
        ("Strategic bets", PAD + 8.0, PAD + 16.0),
        ("Quick wins", W - PAD - 80.0, PAD + 16.0),
        ("Deprioritize", PAD + 8.0, H - PAD - 8.0),
        ("Fill-ins", W - PAD - 60.0, H - PAD - 8.0),
    ] {
        s.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ly}\" fill=\"#64748b\">{label}</text>\n"
        ));
    }
    // Axes.
    s.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#334155\"/>\n",
        H - PAD,
        W - PAD,
        H - PAD
    ));
    s.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"#334155\"/>\n",
        H - PAD
    ));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">feasibility (1–5)</text>\n",
        W / 2.0,
        H - 25.0
    ));
    s.push_str(&format!(
        "<text x=\"20\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {})\">value (1–5)</text>\n",
        H / 2.0,
        H / 2.0
    ));
    // Bubbles, largest first so small ones stay visible.
    let mut order: Vec<&Bubble> = bubbles.iter().collect();
    order.sort_by(|a, b| {
        b.spend_nano_usd
            .cmp(&a.spend_nano_usd)
            .then(a.id.cmp(&b.id))
    });
    for b in order {
        let r = if max_spend == 0 {
            6.0
        } else {
            (6.0f64).max(40.0 * (b.spend_nano_usd as f64 / max_spend as f64).sqrt())
        };
        s.push_str(&format!(
            "<circle class=\"use-case\" data-id=\"{}\" data-stage=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.6\" stroke=\"#1e293b\"><title>{} ({}, {}, priority {:.0})</title></circle>\n",
            xml(&b.id),
            stage_name(b.stage),
            x(b.feasibility),
            y(b.value),
            r,
            stage_colour(b.stage),
            xml(&b.name),
            stage_name(b.stage),
            tollgate_meter::Money::from_nanos(b.spend_nano_usd),
            b.priority
        ));
    }
    // Legend.
    for (k, st) in [
        Stage::Proposed,
        Stage::Pilot,
        Stage::Production,
        Stage::Retired,
    ]
    .into_iter()
    .enumerate()
    {
        let ly = PAD + 40.0 + 18.0 * k as f64;
        s.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            W - PAD - 90.0,
            ly - 9.0,
            stage_colour(st),
            W - PAD - 75.0,
            ly,
            stage_name(st)
        ));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(i: u8, f: u8, d: u8, r: u8, t: u8) -> Scores {
        Scores {
            impact: i,
            feasibility: f,
            data_readiness: d,
            risk: r,
            time_to_impact: t,
        }
    }

    #[test]
    fn priority_weights_and_quadrants_by_hand() {
        let w = Weights::default();
        // All best (risk lowest): 100; all worst: 0.
        assert!((priority(&scores(5, 5, 5, 1, 5), &w) - 100.0).abs() < 1e-9);
        assert!(priority(&scores(1, 1, 1, 5, 1), &w).abs() < 1e-9);
        // Impact 5, the rest 3, risk 3: 35×1 + 25×.5 + 20×.5 + 10×.5 + 10×.5 = 67.5.
        assert!((priority(&scores(5, 3, 3, 3, 3), &w) - 67.5).abs() < 1e-9);
        // Only impact counts: impact 4 → 75.
        let only =
            Weights::parse("impact=1,feasibility=0,data_readiness=0,risk=0,time_to_impact=0")
                .unwrap();
        assert!((priority(&scores(4, 1, 1, 5, 1), &only) - 75.0).abs() < 1e-9);
        // The smallest weight a float holds, alone, counts as much as any other alone.
        let tiny =
            Weights::parse("impact=5e-324,feasibility=0,data_readiness=0,risk=0,time_to_impact=0")
                .unwrap();
        assert!((priority(&scores(4, 1, 1, 5, 1), &tiny) - 75.0).abs() < 1e-9);
        assert!((priority(&scores(3, 3, 3, 3, 3), &tiny) - 50.0).abs() < 1e-9);
        let tiny =
            Weights::parse("impact=0,time_to_impact=5e-324,feasibility=5e-324,data_readiness=0")
                .unwrap();
        let s = scores(2, 4, 1, 3, 5);
        assert!((value_score(&s, &tiny) - 5.0).abs() < 1e-9);
        assert!((feasibility_score(&s, &tiny) - 4.0).abs() < 1e-9);
        // Value (35×4 + 10×2) ÷ 45; feasibility (25×2 + 20×5) ÷ 45.
        let s = scores(4, 2, 5, 3, 2);
        assert!((value_score(&s, &w) - 160.0 / 45.0).abs() < 1e-9);
        assert!((feasibility_score(&s, &w) - 150.0 / 45.0).abs() < 1e-9);
        assert_eq!(quadrant(3.0, 3.0), "quick_win");
        assert_eq!(quadrant(4.0, 2.9), "strategic_bet");
        assert_eq!(quadrant(2.9, 4.0), "fill_in");
        assert_eq!(quadrant(1.0, 1.0), "deprioritize");
    }

    #[test]
    fn weights_are_parsed_with_clear_errors() {
        let w = Weights::parse("impact=40, risk:20").unwrap();
        assert_eq!((w.impact, w.risk, w.feasibility), (40.0, 20.0, 25.0));
        for (spec, says) in [
            ("fit=10", "unknown weight `fit`"),
            ("impact=-1", "from 0 to 1000"),
            ("impact=lots", "from 0 to 1000"),
            ("impact", "name=weight"),
            ("risk=10,impact=5,risk=30", "`risk` is given twice"),
            (
                "impact=0,feasibility=0,data_readiness=0,risk=0,time_to_impact=0",
                "above 0",
            ),
        ] {
            let e = Weights::parse(spec).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
        // What the caller wrote is quoted to 64 characters, whichever mistake it is.
        let long = "Z".repeat(5000);
        for spec in [long.clone(), format!("{long}=1"), format!("impact={long}")] {
            let e = Weights::parse(&spec).unwrap_err();
            assert!(e.len() < 300, "{} bytes: {e}", e.len());
        }
        let e = Weights::parse(&format!("{long}=1")).unwrap_err();
        assert!(
            e.starts_with(&format!("unknown weight `{}…`", "Z".repeat(64))),
            "{e}"
        );
    }

    #[test]
    fn names_are_escaped_in_the_svg() {
        let b = Bubble {
            id: "uc_1".into(),
            name: "<script>&\"x\"\u{1}".into(),
            pod_id: "p".into(),
            stage: Stage::Pilot,
            value: 4.0,
            feasibility: 2.0,
            priority: 50.0,
            quadrant: "strategic_bet",
            spend_nano_usd: 0,
        };
        let svg = svg(&[b], "T & <co>");
        assert!(svg.contains("&lt;script&gt;&amp;&quot;x&quot;"), "{svg}");
        assert!(!svg.contains("<script>") && !svg.contains('\u{1}'), "{svg}");
        assert!(svg.contains("<title>T &amp; &lt;co&gt;</title>"));
    }
}
