//! The page's only stylesheet, inlined in `<style>`: system fonts, no
//! external resources, readable from ~800 px to wide screens.

/// CSS for the report page.
pub(super) const CSS: &str = r#"
:root { --base: rgb(31,119,180); --treat: rgb(230,115,0); --ink: #222; --muted: #666;
  --line: #d9dee5; --pass: #1e8c3c; --fail: #c81e1e; --warn: #b47800; --none: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px; }
section, header.gate { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin-bottom: 18px; }
h1 { font-size: 20px; margin: 4px 0 6px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
header.gate { border-left: 8px solid var(--pass); background: #eef8f1; }
header.gate.fail { border-left-color: var(--fail); background: #fdeeee; }
header.gate.cannot-tell { border-left-color: var(--warn); background: #fdf5e3; }
header.gate.interrupted, header.gate.infrastructure { border-left-color: var(--none); background: #eef0f3; }
.gate-result { font-size: 22px; font-weight: 700; letter-spacing: .02em; color: var(--pass);
  overflow-wrap: anywhere; }
header.gate.fail .gate-result { color: var(--fail); }
header.gate.cannot-tell .gate-result { color: var(--warn); }
header.gate.interrupted .gate-result, header.gate.infrastructure .gate-result { color: var(--none); }
.gate-detail { margin: 4px 0; }
header.gate .mode { font-size: 13px; font-weight: 600; color: var(--muted); margin: 6px 0 0; }
.meta { color: var(--muted); margin: 2px 0; }
.reasons { margin: 8px 0 0; padding-left: 20px; }
.banner { border-radius: 8px; padding: 12px 18px; margin-bottom: 18px; }
.banner.warning { background: #fde8e8; border: 2px solid var(--fail); color: #7a1010; }
.banner.warning ul { margin: 6px 0 0; padding-left: 20px; }
figure { margin: 8px 0 16px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg[role="img"] { display: block; max-width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 4px 0 6px; color: var(--ink); }
.key { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; }
.swatch.base { background: var(--base); } .swatch.treat { background: var(--treat); }
.chart-error { color: var(--fail); font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f7f8fa; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child { white-space: nowrap; }
tr.total td { font-weight: 700; border-top: 2px solid var(--line); }
td.reason { color: var(--muted); font-size: 12px; min-width: 140px; overflow-wrap: anywhere; }
th, td.num { padding-left: 6px; padding-right: 6px; }
.verdict { font-weight: 600; white-space: nowrap; }
.verdict.regression, .status.fail { color: var(--fail); }
.verdict.improvement, .status.pass { color: var(--pass); }
.verdict.cannot-tell, .status.warn { color: var(--warn); }
.verdict.no-regression { color: var(--muted); }
.advisory { color: var(--muted); font-weight: 400; font-size: 12px; }
.status { font-weight: 700; }
table.counters { font-size: 13px; }
table.counters tr.group th { background: #fff; font-size: 14px; padding-top: 12px; border-bottom: 2px solid var(--line); }
table.counters td:first-child { padding-left: 20px; }
.pair { width: 260px; }
.bar { height: 6px; border-radius: 3px; margin: 2px 0; min-width: 1px; }
.bar.base { background: var(--base); } .bar.treat { background: var(--treat); }
pre { background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  overflow-x: auto; font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.diff span { display: block; white-space: pre; }
pre.diff .add { background: #e6f6ea; color: #14612a; }
pre.diff .del { background: #fde8e8; color: #8c1414; }
pre.diff .hunk { color: #5a3fa0; }
table.attribution td:first-child { width: 150px; }
.stack { display: flex; height: 12px; margin: 3px 0; border-radius: 2px; overflow: hidden;
  outline: 1px solid var(--line); min-width: 1px; }
.stack.base { outline-color: var(--base); } .stack.treat { outline-color: var(--treat); }
.stack div { height: 100%; }
ul.why { margin: 6px 0 10px; padding-left: 20px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px; }
"#;
