//! The peers' perf counter windows: parsing them from a peer's log stream
//! and attributing them to the scenario's sections.
//!
//! With `SPHERE_PERF=1` a peer writes one JSON line on stderr every
//! `SPHERE_PERF_DUMP_MS` (`docs/peer-protocol.md`, "Perf counters"):
//!
//! ```json
//! {"timestamp":"2026-11-25T18:26:05.898Z","target":"perf","window_ms":5000,
//!  "counters":{"flush":{"count":2,"total_ms":812.4,"avg_ms":406.2,"max_ms":530.1}}}
//! ```
//!
//! Two sources feed the per-section rows. With peers that offer the
//! `counters` op, the runner reads each peer's totals at both ends of every
//! section and [`rows_from_reads`] subtracts them: exact. Otherwise the
//! periodic windows are attributed, as below.
//!
//! [`parse_perf_line`] turns such a line into a [`PerfWindow`] (and any other
//! line into `None`); [`attribute`] sums the windows per section, per role
//! and over all roles, plus run totals, into [`SectionCounters`] rows (the
//! reports pick each section's heaviest counters from them).
//!
//! A window covers `[timestamp - window_ms, timestamp]` and goes whole to
//! the section it overlaps most. Windows are not split in proportion to
//! the overlap because counts are integers and a maximum cannot be split:
//! every event is counted exactly once, in one section, so section totals
//! add up to the run total. The price is resolution: with 5 s windows a
//! 6 s section gets one or two windows, some of them straddling its
//! neighbours. Lower `SPHERE_PERF_DUMP_MS` when short sections matter.

mod boundaries;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use boundaries::{BoundaryRead, Cumulative, parse_counters_reply, rows_from_reads};

/// Pseudo-section of windows that overlap no section (set-up before the
/// first section, pauses between sections, teardown).
pub const BETWEEN_SECTIONS: &str = "(between sections)";

/// Pseudo-section of the rows that total the whole run.
pub const RUN_TOTAL: &str = "(run total)";

/// Pseudo-role of the rows that sum over every role.
pub const ALL_ROLES: &str = "(all roles)";

/// One counter within one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterStats {
    /// Events in the window.
    pub count: u64,
    /// Time spent in them, in milliseconds (0 for pure counts such as
    /// `verify_proofs.verify`).
    pub total_ms: f64,
    /// `total_ms / count` as the peer computed it.
    pub avg_ms: f64,
    /// The longest single event, in milliseconds.
    pub max_ms: f64,
}

/// One perf snapshot: what happened in the `window_ms` before `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfWindow {
    /// When the peer dumped the window (its end).
    pub timestamp: DateTime<Utc>,
    /// The window's length in milliseconds.
    pub window_ms: u64,
    /// Counters by name.
    pub counters: BTreeMap<String, CounterStats>,
}

impl PerfWindow {
    /// The window's start, `timestamp - window_ms` (the timestamp itself if
    /// that is out of chrono's range).
    pub fn start(&self) -> DateTime<Utc> {
        i64::try_from(self.window_ms)
            .ok()
            .and_then(TimeDelta::try_milliseconds)
            .and_then(|length| self.timestamp.checked_sub_signed(length))
            .unwrap_or(self.timestamp)
    }
}

/// A section's wall-clock span, as the runner recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSpan {
    /// The section's name, e.g. `§C.2 Bob pays`.
    pub section: String,
    /// First step sent.
    pub start: DateTime<Utc>,
    /// Last response received.
    pub end: DateTime<Utc>,
}

/// One counter summed over a section (or [`RUN_TOTAL`]) for one role (or
/// [`ALL_ROLES`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionCounters {
    /// The section, [`BETWEEN_SECTIONS`] or [`RUN_TOTAL`].
    pub section: String,
    /// The role, or [`ALL_ROLES`].
    pub role: String,
    /// The counter's name, e.g. `flush`.
    pub counter: String,
    /// Events, summed over the windows.
    pub count: u64,
    /// Milliseconds, summed over the windows.
    pub total_ms: f64,
    /// The largest single event in any of the windows.
    pub max_ms: f64,
}

impl SectionCounters {
    /// Mean time per event, `total_ms / count`; 0 when there was no event.
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        }
    }
}

/// The line as it is on the wire; checked before it becomes a [`PerfWindow`].
#[derive(Deserialize)]
struct RawLine {
    target: String,
    timestamp: String,
    window_ms: u64,
    counters: BTreeMap<String, RawStats>,
}

#[derive(Deserialize)]
struct RawStats {
    count: u64,
    total_ms: f64,
    // A peer outside this repository may leave the derived fields out.
    avg_ms: Option<f64>,
    max_ms: Option<f64>,
}

impl RawStats {
    /// The stats with `avg_ms` and `max_ms` filled in (`total_ms / count`,
    /// resp. `avg_ms`); `None` for negative or non-finite times.
    fn checked(self) -> Option<CounterStats> {
        let avg_ms = self.avg_ms.unwrap_or(if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        });
        let max_ms = self.max_ms.unwrap_or(avg_ms);
        if [self.total_ms, avg_ms, max_ms]
            .iter()
            .any(|ms| !ms.is_finite() || *ms < 0.0)
        {
            return None;
        }
        Some(CounterStats {
            count: self.count,
            total_ms: self.total_ms,
            avg_ms,
            max_ms,
        })
    }
}

/// Parses one line of a peer's stderr; `Some` only for a well-formed perf
/// window (`"target":"perf"`).
///
/// Any other line — a log line, a partial line, garbage, negative or
/// non-finite times, a bad timestamp — gives `None`; it never panics.
/// `avg_ms` and `max_ms` may be absent (computed from `total_ms / count`,
/// resp. taken as `avg_ms`).
pub fn parse_perf_line(line: &str) -> Option<PerfWindow> {
    let line = line.trim();
    // Cheap filter first: most lines of the stream are ordinary logs, and
    // parsing each one fully would cost the harness more than the peer.
    if !line.starts_with('{') || !line.contains("\"perf\"") {
        return None;
    }
    let raw: RawLine = serde_json::from_str(line).ok()?;
    if raw.target != "perf" {
        return None;
    }
    let timestamp = DateTime::parse_from_rfc3339(&raw.timestamp)
        .ok()?
        .with_timezone(&Utc);
    let counters = raw
        .counters
        .into_iter()
        .map(|(name, stats)| Some((name, stats.checked()?)))
        .collect::<Option<_>>()?;
    Some(PerfWindow {
        timestamp,
        window_ms: raw.window_ms,
        counters,
    })
}

/// The section a window goes to: the one it overlaps most (the earlier one
/// on a tie); for a window of length 0, the one containing its timestamp;
/// `None` when it overlaps no section.
fn section_of(window: &PerfWindow, spans: &[SectionSpan]) -> Option<usize> {
    let (start, end) = (window.start(), window.timestamp);
    if start == end {
        return spans
            .iter()
            .position(|span| span.start <= end && end <= span.end);
    }
    let mut best: Option<(usize, TimeDelta)> = None;
    for (index, span) in spans.iter().enumerate() {
        let overlap = end.min(span.end) - start.max(span.start);
        if overlap > TimeDelta::zero() && best.is_none_or(|(_, most)| overlap > most) {
            best = Some((index, overlap));
        }
    }
    best.map(|(index, _)| index)
}

/// Where a row sorts: sections in the order of first appearance in the
/// spans, then [`BETWEEN_SECTIONS`], then [`RUN_TOTAL`]; roles by name,
/// then [`ALL_ROLES`]; counters by name.
type RowKey = (usize, (bool, String), String);

#[derive(Default)]
struct Sum {
    count: u64,
    total_ms: f64,
    max_ms: f64,
}

/// Sums the windows of every role per section.
///
/// `windows` holds each window with the role of the peer that wrote it.
/// Each window goes whole to the section it overlaps most (see the module
/// docs for why), or to [`BETWEEN_SECTIONS`] if it overlaps none. Spans
/// with the same section name (a repeated section) are merged.
///
/// The result holds, per section: one row per role and counter, then one
/// row per counter over [`ALL_ROLES`]; then the same for [`RUN_TOTAL`]
/// (every window of the run, whatever its section). Rows are sorted:
/// sections in span order, [`BETWEEN_SECTIONS`] (only if some window fell
/// there), [`RUN_TOTAL`]; roles by name, [`ALL_ROLES`] last; counters by
/// name.
pub fn attribute(windows: &[(String, PerfWindow)], spans: &[SectionSpan]) -> Vec<SectionCounters> {
    let mut names: Vec<&str> = Vec::new();
    let span_name: Vec<usize> = spans
        .iter()
        .map(
            |span| match names.iter().position(|name| *name == span.section) {
                Some(index) => index,
                None => {
                    names.push(&span.section);
                    names.len() - 1
                }
            },
        )
        .collect();
    let between = names.len();
    let total = between + 1;

    let mut sums: BTreeMap<RowKey, Sum> = BTreeMap::new();
    for (role, window) in windows {
        let section = section_of(window, spans).map_or(between, |span| span_name[span]);
        for (counter, stats) in &window.counters {
            for section in [section, total] {
                for role in [(false, role.clone()), (true, String::new())] {
                    let sum = sums.entry((section, role, counter.clone())).or_default();
                    sum.count = sum.count.saturating_add(stats.count);
                    sum.total_ms += stats.total_ms;
                    sum.max_ms = sum.max_ms.max(stats.max_ms);
                }
            }
        }
    }

    into_rows(sums, &names)
}

/// Turns sums keyed by (section index, (all roles?, role), counter) into
/// rows; index `names.len()` is [`BETWEEN_SECTIONS`], the next one
/// [`RUN_TOTAL`].
fn into_rows(sums: BTreeMap<RowKey, Sum>, names: &[&str]) -> Vec<SectionCounters> {
    let between = names.len();
    let total = between + 1;
    sums.into_iter()
        .map(|((section, (all, role), counter), sum)| SectionCounters {
            section: match section {
                s if s == between => BETWEEN_SECTIONS.to_string(),
                s if s == total => RUN_TOTAL.to_string(),
                s => names
                    .get(s)
                    .map_or_else(String::new, |name| name.to_string()),
            },
            role: if all { ALL_ROLES.to_string() } else { role },
            counter,
            count: sum.count,
            total_ms: sum.total_ms,
            max_ms: sum.max_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("timestamp in range")
    }

    fn window(end_secs: i64, window_ms: u64, counters: &[(&str, u64, f64, f64)]) -> PerfWindow {
        PerfWindow {
            timestamp: at(end_secs),
            window_ms,
            counters: counters
                .iter()
                .map(|&(name, count, total_ms, max_ms)| {
                    let avg_ms = if count == 0 {
                        0.0
                    } else {
                        total_ms / count as f64
                    };
                    (
                        name.to_string(),
                        CounterStats {
                            count,
                            total_ms,
                            avg_ms,
                            max_ms,
                        },
                    )
                })
                .collect(),
        }
    }

    fn span(section: &str, start: i64, end: i64) -> SectionSpan {
        SectionSpan {
            section: section.to_string(),
            start: at(start),
            end: at(end),
        }
    }

    fn row<'a>(
        rows: &'a [SectionCounters],
        section: &str,
        role: &str,
        counter: &str,
    ) -> &'a SectionCounters {
        rows.iter()
            .find(|r| r.section == section && r.role == role && r.counter == counter)
            .unwrap_or_else(|| panic!("no row {section}/{role}/{counter} in {rows:#?}"))
    }

    #[test]
    fn parses_the_protocol_example() {
        let line = r#"{"timestamp":"2026-11-25T18:26:05.898Z","target":"perf","window_ms":5000,
 "counters":{"flush":{"count":2,"total_ms":812.4,"avg_ms":406.2,"max_ms":530.1},
             "verify_proofs.verify":{"count":4830,"total_ms":0,"avg_ms":0,"max_ms":0}}}"#;
        let line = line.replace('\n', "");
        let window = parse_perf_line(&line).expect("perf line");
        assert_eq!(window.window_ms, 5000);
        assert_eq!(
            window.timestamp.to_rfc3339(),
            "2026-11-25T18:26:05.898+00:00"
        );
        assert_eq!(window.start().to_rfc3339(), "2026-11-25T18:26:00.898+00:00");
        let flush = window.counters["flush"];
        assert_eq!(flush.count, 2);
        assert_eq!(flush.total_ms, 812.4);
        assert_eq!(flush.avg_ms, 406.2);
        assert_eq!(flush.max_ms, 530.1);
        assert_eq!(window.counters["verify_proofs.verify"].count, 4830);
    }

    #[test]
    fn parses_with_offsets_and_missing_derived_fields() {
        let line = r#"  {"timestamp":"2026-11-25T19:26:05+01:00","target":"perf","window_ms":1000,"counters":{"load":{"count":4,"total_ms":10}},"extra":1}  "#;
        let window = parse_perf_line(line).expect("perf line");
        assert_eq!(window.timestamp.to_rfc3339(), "2026-11-25T18:26:05+00:00");
        assert_eq!(window.counters["load"].avg_ms, 2.5);
        assert_eq!(window.counters["load"].max_ms, 2.5);
        let empty = r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perf","window_ms":5000,"counters":{}}"#;
        assert!(
            parse_perf_line(empty)
                .expect("empty window")
                .counters
                .is_empty()
        );
    }

    #[test]
    fn ignores_other_lines_and_garbage() {
        let lines = [
            "",
            "   ",
            "not json at all",
            "{",
            "{\"target\":\"perf\"",
            r#"{"timestamp":"2026-11-25T18:26:05Z","level":"INFO","target":"sphere_sdk::flush","message":"perf"}"#,
            r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perfx","window_ms":5000,"counters":{}}"#,
            r#"{"timestamp":"yesterday","target":"perf","window_ms":5000,"counters":{}}"#,
            r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perf","window_ms":-5,"counters":{}}"#,
            r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perf","window_ms":5000,"counters":{"x":{"count":1,"total_ms":-1}}}"#,
            r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perf","window_ms":5000,"counters":{"x":{"count":"1","total_ms":1}}}"#,
            r#"{"timestamp":"2026-11-25T18:26:05Z","target":"perf","window_ms":5000,"counters":[1,2]}"#,
            r#"["perf"]"#,
            "{\"target\":\"perf\",\u{0}}",
        ];
        for line in lines {
            assert_eq!(parse_perf_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn window_start_never_panics() {
        let mut window = window(0, u64::MAX, &[]);
        assert_eq!(window.start(), window.timestamp);
        window.timestamp = DateTime::<Utc>::MIN_UTC;
        window.window_ms = 1;
        assert_eq!(window.start(), window.timestamp);
    }

    #[test]
    fn straddling_window_goes_to_largest_overlap() {
        let spans = [span("§1", 0, 10), span("§2", 10, 30)];
        let windows = vec![
            // [7, 12]: 3 s in §1, 2 s in §2 -> §1
            (
                "peer1".to_string(),
                window(12, 5000, &[("flush", 1, 100.0, 100.0)]),
            ),
            // [8, 13]: 2 s in §1, 3 s in §2 -> §2
            (
                "peer1".to_string(),
                window(13, 5000, &[("flush", 2, 50.0, 30.0)]),
            ),
            // [5, 15]: 5 s each -> the earlier, §1
            (
                "peer2".to_string(),
                window(15, 10_000, &[("flush", 4, 40.0, 20.0)]),
            ),
            // [31, 36]: after every section
            (
                "peer2".to_string(),
                window(36, 5000, &[("load", 1, 7.0, 7.0)]),
            ),
            // zero-length window at 20: inside §2
            ("peer2".to_string(), window(20, 0, &[("load", 3, 3.0, 1.0)])),
        ];
        let rows = attribute(&windows, &spans);
        assert_eq!(row(&rows, "§1", "peer1", "flush").count, 1);
        assert_eq!(row(&rows, "§2", "peer1", "flush").count, 2);
        assert_eq!(row(&rows, "§1", "peer2", "flush").count, 4);
        assert_eq!(row(&rows, BETWEEN_SECTIONS, "peer2", "load").count, 1);
        assert_eq!(row(&rows, "§2", "peer2", "load").count, 3);
        assert!(
            !rows
                .iter()
                .any(|r| r.section == "§2" && r.role == "peer2" && r.counter == "flush")
        );
    }

    #[test]
    fn totals_per_role_all_roles_and_run() {
        let spans = [span("setup", 0, 10), span("pay", 10, 20)];
        let windows = vec![
            (
                "peer2".to_string(),
                window(
                    5,
                    5000,
                    &[("flush", 2, 800.0, 500.0), ("load", 1, 10.0, 10.0)],
                ),
            ),
            (
                "peer1".to_string(),
                window(5, 5000, &[("flush", 1, 100.0, 100.0)]),
            ),
            (
                "peer1".to_string(),
                window(10, 5000, &[("flush", 3, 300.0, 200.0)]),
            ),
            (
                "peer1".to_string(),
                window(15, 5000, &[("flush", 1, 50.0, 50.0)]),
            ),
        ];
        let rows = attribute(&windows, &spans);

        let peer1 = row(&rows, "setup", "peer1", "flush");
        assert_eq!(
            (peer1.count, peer1.total_ms, peer1.max_ms),
            (4, 400.0, 200.0)
        );
        assert_eq!(peer1.avg_ms(), 100.0);
        let all = row(&rows, "setup", ALL_ROLES, "flush");
        assert_eq!((all.count, all.total_ms, all.max_ms), (6, 1200.0, 500.0));
        assert_eq!(all.avg_ms(), 200.0);
        let pay = row(&rows, "pay", ALL_ROLES, "flush");
        assert_eq!((pay.count, pay.total_ms), (1, 50.0));

        let run = row(&rows, RUN_TOTAL, ALL_ROLES, "flush");
        assert_eq!((run.count, run.total_ms, run.max_ms), (7, 1250.0, 500.0));
        let run1 = row(&rows, RUN_TOTAL, "peer1", "flush");
        assert_eq!((run1.count, run1.total_ms), (5, 450.0));
        assert_eq!(row(&rows, RUN_TOTAL, "peer2", "load").count, 1);

        // Sections add up to the run total for every counter and role.
        for total in rows.iter().filter(|r| r.section == RUN_TOTAL) {
            let summed: u64 = rows
                .iter()
                .filter(|r| {
                    r.section != RUN_TOTAL && r.role == total.role && r.counter == total.counter
                })
                .map(|r| r.count)
                .sum();
            assert_eq!(summed, total.count, "{total:?}");
        }

        // Order: sections in span order, run total last; roles by name,
        // all roles last; counters by name.
        let order: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.section.as_str(), r.role.as_str(), r.counter.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                ("setup", "peer1", "flush"),
                ("setup", "peer2", "flush"),
                ("setup", "peer2", "load"),
                ("setup", ALL_ROLES, "flush"),
                ("setup", ALL_ROLES, "load"),
                ("pay", "peer1", "flush"),
                ("pay", ALL_ROLES, "flush"),
                (RUN_TOTAL, "peer1", "flush"),
                (RUN_TOTAL, "peer2", "flush"),
                (RUN_TOTAL, "peer2", "load"),
                (RUN_TOTAL, ALL_ROLES, "flush"),
                (RUN_TOTAL, ALL_ROLES, "load"),
            ]
        );
    }

    #[test]
    fn repeated_section_names_merge_and_empty_input_is_empty() {
        let spans = [
            span("loop", 0, 10),
            span("other", 10, 20),
            span("loop", 20, 30),
        ];
        let windows = vec![
            ("p".to_string(), window(10, 5000, &[("x", 1, 1.0, 1.0)])),
            ("p".to_string(), window(30, 5000, &[("x", 2, 2.0, 1.5)])),
        ];
        let rows = attribute(&windows, &spans);
        assert_eq!(row(&rows, "loop", "p", "x").count, 3);
        assert!(attribute(&[], &spans).is_empty());
    }
}
