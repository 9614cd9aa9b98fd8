//! Unified diffs of two JSON values, for failed assertions.
//!
//! Strings are diffed as their own text, so a balance reads as the peer
//! printed it; anything else as pretty JSON. With one hunk the diff is just
//! the `-`/`+`/` ` lines, as a broken cross-device balance reads:
//!
//! ```text
//! -UCT: 99.999999999989 (1 token)
//! +UCT: 199.999999999989 (2 tokens)
//! ```
//!
//! With several hunks each gets an `@@ -l,n +l,n @@` header so a reader can
//! find the lines in long JSON.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change.
const CONTEXT_LINES: usize = 3;

/// How a value is shown on one side of a diff: strings as text, the rest
/// as pretty JSON.
pub fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    }
}

/// The unified diff of `left` (`-`) and `right` (`+`); empty when the
/// values are equal.
pub fn unified_diff(left: &Value, right: &Value) -> String {
    if left == right {
        return String::new();
    }
    let (mut old, mut new) = (render(left), render(right));
    if old == new {
        // Same text, different types (`"1"` vs `1`): show the JSON so the
        // difference is visible.
        old = left.to_string();
        new = right.to_string();
    }
    diff_text(&old, &new)
}

/// The unified diff of two texts, line by line; every output line ends
/// with `\n`.
pub fn diff_text(old: &str, new: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let groups = diff.grouped_ops(CONTEXT_LINES);
    let with_headers = groups.len() > 1;
    let mut out = String::new();
    for group in &groups {
        if with_headers && let (Some(first), Some(last)) = (group.first(), group.last()) {
            let old_range = first.old_range().start..last.old_range().end;
            let new_range = first.new_range().start..last.new_range().end;
            out.push_str(&format!(
                "@@ -{},{} +{},{} @@\n",
                old_range.start + 1,
                old_range.len(),
                new_range.start + 1,
                new_range.len()
            ));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                out.push(sign);
                let line = change.value();
                out.push_str(line.strip_suffix('\n').unwrap_or(line));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_diff_as_their_own_text() {
        let got = unified_diff(
            &json!("UCT: 99.999999999989 (1 token)"),
            &json!("UCT: 199.999999999989 (2 tokens)"),
        );
        assert_eq!(
            got,
            "-UCT: 99.999999999989 (1 token)\n+UCT: 199.999999999989 (2 tokens)\n"
        );
    }

    #[test]
    fn equal_values_give_an_empty_diff_and_types_show_when_text_agrees() {
        assert_eq!(unified_diff(&json!({"a": 1}), &json!({"a": 1})), "");
        assert_eq!(unified_diff(&json!("1"), &json!(1)), "-\"1\"\n+1\n");
    }

    #[test]
    fn json_diffs_pretty_with_context() {
        let got = unified_diff(&json!({"a": 1, "b": 2}), &json!({"a": 1, "b": 3}));
        assert_eq!(got, " {\n   \"a\": 1,\n-  \"b\": 2\n+  \"b\": 3\n }\n");
    }

    #[test]
    fn distant_changes_get_hunk_headers() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new: String = (0..20)
            .map(|i| match i {
                1 => "one\n".to_owned(),
                18 => "eighteen\n".to_owned(),
                _ => format!("{i}\n"),
            })
            .collect();
        let got = diff_text(&old, &new);
        assert!(got.starts_with("@@ -1,5 +1,5 @@\n 0\n-1\n+one\n"), "{got}");
        assert!(got.contains("@@ -16,5 +16,5 @@\n"), "{got}");
    }
}
