//! The `${...}` syntax: splitting a string into literal text and
//! references.

use super::VarError;

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as is.
    Literal(String),
    /// A reference, without `${}`.
    Var(String),
}

/// Splits a string into literal text and `${...}` references.
pub fn parse_template(text: &str) -> Result<Vec<Segment>, VarError> {
    let syntax = |reason: String| VarError::Syntax {
        text: text.to_owned(),
        reason,
    };
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| syntax("`${` without a closing `}`".to_owned()))?;
            let name = &tail[..end];
            check_reference(name).map_err(syntax)?;
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Var(name.to_owned()));
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

fn check_reference(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty `${}`".to_owned());
    }
    if name.split('.').any(|segment| !is_name(segment)) {
        return Err(format!(
            "`${{{name}}}` is not a dotted name (letters, digits, `_`, `-`)"
        ));
    }
    Ok(())
}

/// Whether `s` is a valid name segment: non-empty, letters, digits, `_`, `-`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The references in a string, in order (without `${}`).
pub fn references(text: &str) -> Result<Vec<String>, VarError> {
    Ok(parse_template(text)?
        .into_iter()
        .filter_map(|segment| match segment {
            Segment::Var(name) => Some(name),
            Segment::Literal(_) => None,
        })
        .collect())
}
