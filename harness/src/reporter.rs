//! The terminal: a progress line while running, then the section table and
//! the assertion results. Consumes [`RunEvent`]s; decides nothing.

use std::{fmt::Write as _, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::{
    record::{IterationRecord, IterationStatus},
    runner::RunEvent,
};

/// How much the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Progress bar, tables, assertion diffs.
    Normal,
    /// Only the final line and errors.
    Quiet,
}

/// Shows progress until the event channel closes.
pub fn spawn_progress(
    mut events: mpsc::UnboundedReceiver<RunEvent>,
    total_iterations: usize,
    verbosity: Verbosity,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = if verbosity == Verbosity::Normal
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
        {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        let mut iteration = String::new();
        while let Some(event) = events.recv().await {
            match event {
                RunEvent::IterationStarted {
                    branch,
                    iteration: k,
                    warmup,
                } => {
                    iteration = iteration_label(&branch, k, total_iterations, warmup);
                    if let Some(bar) = &bar {
                        bar.set_message(format!("{iteration}: starting testnet and peers"));
                    }
                }
                RunEvent::SectionStarted { id, title } => {
                    if let Some(bar) = &bar {
                        bar.set_message(format!("{iteration}: {id} {title}"));
                    }
                }
                RunEvent::StepFailed { section, message } if verbosity == Verbosity::Normal => {
                    print_line(&bar, &format!("{section}: {message}"));
                }
                RunEvent::Assertion(outcome)
                    if !outcome.passed && verbosity == Verbosity::Normal =>
                {
                    print_line(&bar, outcome.report().trim_end());
                }
                RunEvent::IterationFinished(record) => {
                    // An input error (a scenario op the peer does not offer)
                    // is the command's own error line, printed once by soak.
                    let input = record
                        .failure
                        .as_ref()
                        .is_some_and(crate::runner::IterationFailure::is_input_error);
                    if let IterationStatus::Infrastructure { message } = &record.status
                        && !input
                    {
                        print_line(&bar, &format!("error: {message}"));
                    }
                }
                _ => {}
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    })
}

/// "baseline 3/10", or "baseline warm-up 1" for an iteration that is not
/// counted.
fn iteration_label(branch: &str, k: usize, total: usize, warmup: bool) -> String {
    if warmup {
        format!("{branch} warm-up {k}")
    } else {
        format!("{branch} {k}/{total}")
    }
}

fn print_line(bar: &Option<ProgressBar>, text: &str) {
    match bar {
        Some(bar) => bar.println(text),
        None => eprintln!("{text}"),
    }
}

/// The section table of one branch: the median seconds over iterations and
/// the worst status, then the assertions' pass counts.
pub fn section_table(records: &[IterationRecord]) -> String {
    let Some(first) = records.first() else {
        return "no iteration ran\n".to_owned();
    };
    let mut out = String::new();
    let width = first
        .sections
        .iter()
        .map(|s| s.id.as_str().len() + s.title.len() + 2)
        .max()
        .unwrap_or(10)
        .max(12);
    let _ = writeln!(out, "{:<width$}  {:>9}  status", "section", "seconds");
    for (index, section) in first.sections.iter().enumerate() {
        let mut seconds: Vec<f64> = records
            .iter()
            .filter_map(|r| r.sections.get(index).and_then(|s| s.seconds))
            .collect();
        let statuses: Vec<&str> = records
            .iter()
            .filter_map(|r| r.sections.get(index).map(|s| s.status.as_str()))
            .collect();
        let worst = ["ERROR", "FAIL", "NOT_RUN", "PASS"]
            .into_iter()
            .find(|w| statuses.contains(w))
            .unwrap_or("-");
        let label = format!("{} {}", section.id, section.title);
        let shown = median(&mut seconds)
            .map(|s| format!("{s:.2}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "{label:<width$}  {shown:>9}  {worst}");
    }
    let mut totals: Vec<f64> = records.iter().map(|r| r.total_seconds).collect();
    let total = median(&mut totals)
        .map(|s| format!("{s:.2}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{:<width$}  {total:>9}", "total");
    let mut names: Vec<&str> = first.assertions.iter().map(|a| a.name.as_str()).collect();
    names.dedup();
    if !names.is_empty() {
        let _ = writeln!(out, "\nassertions (passed / iterations)");
        for name in names {
            let results: Vec<bool> = records
                .iter()
                .flat_map(|r| {
                    r.assertions
                        .iter()
                        .filter(|a| a.name == name)
                        .map(|a| a.passed)
                })
                .collect();
            let passed = results.iter().filter(|p| **p).count();
            let mark = if passed == results.len() {
                "PASS"
            } else {
                "FAIL"
            };
            let _ = writeln!(out, "  {mark}  {name}  {passed}/{}", results.len());
        }
    }
    out
}

/// The median, or `None` for no values.
fn median(values: &mut [f64]) -> Option<f64> {
    (!values.is_empty()).then(|| crate::stats::median(values))
}

#[cfg(test)]
mod tests {
    use super::iteration_label;

    #[test]
    fn a_warm_up_is_not_shown_as_a_counted_iteration() {
        assert_eq!(iteration_label("baseline", 3, 10, false), "baseline 3/10");
        assert_eq!(
            iteration_label("treatment", 1, 10, true),
            "treatment warm-up 1"
        );
    }
}
