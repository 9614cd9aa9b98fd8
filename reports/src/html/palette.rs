//! Colours and chart sizes shared by the charts and the CSS, so a branch
//! looks the same in every chart, legend and table of the page.

use plotters::style::RGBColor;

use crate::model::Verdict;

/// The baseline's colour (blue).
pub(super) const BASELINE: RGBColor = RGBColor(31, 119, 180);
/// The treatment's colour (orange).
pub(super) const TREATMENT: RGBColor = RGBColor(230, 115, 0);
/// A branch that is neither "baseline" nor "treatment".
pub(super) const OTHER_BRANCH: RGBColor = RGBColor(110, 110, 110);
/// Axis text and annotations.
pub(super) const INK: RGBColor = RGBColor(34, 34, 34);
/// The ± tolerance band and other quiet fills.
pub(super) const BAND: RGBColor = RGBColor(226, 232, 240);
/// Reference lines (ratio = 1).
pub(super) const RULE: RGBColor = RGBColor(90, 90, 90);

/// Width in pixels of every chart (the page's content is ~1140 px wide).
pub(super) const CHART_WIDTH: u32 = 1120;

/// The colour of a verdict's marker: red and green for the decided
/// directions, amber for "cannot tell" (it needs attention), grey for "no
/// regression" (nothing to look at). The CSS uses the same colours.
pub(super) fn verdict_colour(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::Regression => RGBColor(200, 30, 30),
        Verdict::Improvement => RGBColor(30, 140, 60),
        Verdict::NoRegression => RGBColor(120, 120, 120),
        Verdict::CannotTell => RGBColor(180, 120, 0),
    }
}

/// The colour of a branch by its name.
pub(super) fn branch_colour(branch: &str) -> RGBColor {
    match branch {
        "baseline" => BASELINE,
        "treatment" => TREATMENT,
        _ => OTHER_BRANCH,
    }
}

/// `colour` as a CSS `rgb(...)` value.
pub(super) fn css(colour: RGBColor) -> String {
    let RGBColor(r, g, b) = colour;
    format!("rgb({r},{g},{b})")
}
