//! Where each peer's wall time went, per section: a stacked bar per branch
//! (baseline above treatment), one colour per category, drawn in HTML and
//! CSS so every segment carries its own tooltip and the page stays
//! script-free.

use std::fmt::Write as _;

use crate::escape::html as esc;
use crate::model::AbReport;
use crate::present::seconds_pair;

/// The colour of a category; categories the harness adds later fall back
/// to grey rather than breaking the page.
fn colour(category: &str) -> &'static str {
    match category {
        "cpu" => "#4c78a8",
        "backoff" => "#e45756",
        "aggregator" => "#f58518",
        "gateway" => "#54a24b",
        "relay" => "#b279a2",
        "poll" => "#eeca3b",
        "store" => "#9d755d",
        _ => "#c7cdd4",
    }
}

/// The section's figure: a legend, then per (section, peer) two stacked
/// bars scaled to the larger of the two wall times.
pub(super) fn attribution(report: &AbReport) -> String {
    let Some(first) = report.attribution.first() else {
        return String::new();
    };
    let mut out = String::from("<div class=\"legend\">");
    for part in &first.parts {
        let _ = write!(
            out,
            "<span class=\"key\"><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
            colour(&part.category),
            esc(&part.category)
        );
    }
    out.push_str("</div><table class=\"attribution\"><tbody>");
    for row in &report.attribution {
        let largest = row.baseline_wall_s.max(row.treatment_wall_s);
        let _ = write!(
            out,
            "<tr><td>{} · {}<br><span class=\"meta\">{} s</span></td><td>",
            esc(&row.section),
            esc(&row.role),
            esc(&seconds_pair(row.baseline_wall_s, row.treatment_wall_s))
        );
        for (branch, class, wall) in [
            ("baseline", "base", row.baseline_wall_s),
            ("treatment", "treat", row.treatment_wall_s),
        ] {
            let _ = write!(
                out,
                "<div class=\"stack {class}\" title=\"{branch}: {wall:.2} s\" style=\"width:{:.1}%\">",
                share(wall, largest)
            );
            for part in &row.parts {
                let seconds = if branch == "baseline" {
                    part.baseline_s
                } else {
                    part.treatment_s
                };
                if seconds > 0.0 {
                    let _ = write!(
                        out,
                        "<div style=\"flex:{seconds:.4} 0 0;background:{}\" title=\"{branch} {}: {seconds:.2} s\"></div>",
                        colour(&part.category),
                        esc(&part.category),
                    );
                }
            }
            out.push_str("</div>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// `part` as a percentage of `whole`, 0 when the whole is empty.
fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 && part.is_finite() {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}
