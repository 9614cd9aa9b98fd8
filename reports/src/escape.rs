//! Escaping of user-controlled text for HTML and GitHub Markdown.
//!
//! Every string from an [`AbReport`](crate::model::AbReport) (section names,
//! labels, diffs, warnings, the manifest) passes through here before it is
//! placed in markup.

/// Escapes `&`, `<`, `>`, `"` and `'` so `text` is inert in HTML element
/// content and in quoted attribute values.
pub(crate) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Makes `text` safe as inline Markdown and inside a table cell: HTML
/// metacharacters become entities, `|` is escaped, and line breaks become
/// spaces so a cell stays on one line.
pub(crate) fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

/// A code fence of backticks longer than any run of backticks in `body`, so
/// the body cannot close the block early.
pub(crate) fn code_fence(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn markdown_keeps_cells_on_one_line() {
        assert_eq!(markdown("a|b\nc <d>"), "a\\|b c &lt;d&gt;");
        assert_eq!(markdown("peer_1 *x*"), "peer\\_1 \\*x\\*");
    }

    #[test]
    fn fences_outgrow_the_body() {
        assert_eq!(code_fence("plain"), "```");
        assert_eq!(code_fence("a ```` b"), "`````");
    }
}
