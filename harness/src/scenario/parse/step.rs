//! One `[[sections.steps]]` table: an op, a snapshot or an assertion.

use std::time::Duration;

use serde_json::Value;
use toml::{Spanned, de::DeValue};

use super::{
    StepSpans,
    reader::{Doc, Fields, VarRef, type_name},
};
use crate::scenario::{
    ScenarioError,
    model::{
        AssertKind, AssertStep, Check, Location, MAX_REPEAT, OpStep, RepeatCount, Severity,
        SnapshotStep, Step, StepKind,
    },
    vars::{Segment, parse_template},
};

const KIND_KEYS: [&str; 3] = ["op", "snapshot", "assert"];
const OP_FIELDS: [&str; 8] = [
    "peer",
    "op",
    "args",
    "capture",
    "timeout_ms",
    "repeat",
    "expect",
    "expect_error",
];
const SNAPSHOT_FIELDS: [&str; 5] = ["snapshot", "peer", "wallet", "ops", "timeout_ms"];
const ASSERT_FIELDS: [&str; 8] = [
    "assert",
    "kind",
    "severity",
    "left",
    "right",
    "tolerance",
    "values",
    "total",
];

/// Reads one step, deciding its kind by which of `op`, `snapshot`,
/// `assert` it has (exactly one).
pub(crate) fn read_step(
    doc: &Doc<'_>,
    value: &Spanned<DeValue<'_>>,
) -> Result<(Step, StepSpans), ScenarioError> {
    let fields = Fields::of(doc, value, "a step")?;
    let location = doc.loc(value.span().start);
    let mut present: Vec<(&str, std::ops::Range<usize>)> = KIND_KEYS
        .iter()
        .filter_map(|key| fields.key_span(key).map(|span| (*key, span)))
        .collect();
    present.sort_by_key(|(_, span)| span.start);
    let kind = match present.as_slice() {
        [] => {
            return Err(doc.err(
                &value.span(),
                "step has none of `op`, `snapshot`, `assert` (a step is exactly one of them)",
            ));
        }
        [(kind, _)] => *kind,
        [(first, _), (second, span), ..] => {
            return Err(doc.err(
                span,
                format!(
                    "step has both `{first}` and `{second}` (a step is exactly one of `op`, `snapshot`, `assert`)"
                ),
            ));
        }
    };
    let mut spans = StepSpans::default();
    let step_kind = match kind {
        "op" => StepKind::Op(read_op(&fields, &mut spans)?),
        "snapshot" => StepKind::Snapshot(read_snapshot(&fields, &mut spans)?),
        _ => StepKind::Assert(read_assert(&fields, &mut spans)?),
    };
    Ok((
        Step {
            location,
            kind: step_kind,
        },
        spans,
    ))
}

fn read_op(fields: &Fields<'_, '_>, spans: &mut StepSpans) -> Result<OpStep, ScenarioError> {
    let fields = fields.named("an op step");
    fields.deny_unknown(&OP_FIELDS)?;
    let (peer, peer_at) = fields.req_str("peer")?;
    spans.fields.insert("peer", peer_at);
    let (op, op_location) = fields.req_name("op", false)?;
    let args = fields
        .opt_object("args", &mut spans.refs)?
        .unwrap_or_else(|| Value::Object(Default::default()));
    let capture = match fields.opt_str("capture")? {
        Some((name, at)) => {
            fields.check_name("capture", &name, at, true)?;
            spans.fields.insert("capture", at);
            Some(name)
        }
        None => None,
    };
    let timeout = fields.opt_millis("timeout_ms")?.map(Duration::from_millis);
    let repeat = read_repeat(&fields, spans)?;
    let expect = fields.opt_object("expect", &mut spans.refs)?;
    let expect_error = fields.opt_str("expect_error")?.map(|(kind, _)| kind);
    if expect.is_some() && expect_error.is_some() {
        let span = fields
            .key_span("expect_error")
            .unwrap_or(fields.span.clone());
        return Err(fields.doc.err(
            &span,
            "a step has `expect` (the op succeeds) or `expect_error` (it fails), not both",
        ));
    }
    Ok(OpStep {
        peer,
        op,
        op_location,
        args,
        capture,
        timeout,
        repeat,
        expect,
        expect_error,
    })
}

/// `repeat`: a non-negative integer, or a string that is exactly one
/// `${variable}` (checked for a count later: at load for a param, at run
/// time for a capture).
fn read_repeat(
    fields: &Fields<'_, '_>,
    spans: &mut StepSpans,
) -> Result<Option<RepeatCount>, ScenarioError> {
    let Some(value) = fields.get("repeat") else {
        return Ok(None);
    };
    let at = fields.doc.loc(value.span().start);
    spans.fields.insert("repeat", at);
    let shape = "`repeat` must be a non-negative integer or a single `${variable}`";
    match value.get_ref() {
        DeValue::Integer(_) => match fields.doc.to_json_literal(value)?.as_u64() {
            Some(count) if count <= MAX_REPEAT => Ok(Some(RepeatCount::Fixed(count))),
            Some(count) => Err(fields.doc.err_at(
                at,
                format!("`repeat` `{count}` is more than {MAX_REPEAT} repeats; lower it"),
            )),
            None => Err(fields
                .doc
                .err_at(at, format!("{shape}, not a negative number"))),
        },
        DeValue::String(text) => {
            let segments =
                parse_template(text).map_err(|e| fields.doc.err_at(at, e.to_string()))?;
            match segments.as_slice() {
                [Segment::Var(reference)] => {
                    spans.refs.push(VarRef {
                        reference: reference.clone(),
                        location: at,
                    });
                    Ok(Some(RepeatCount::Var(reference.clone())))
                }
                _ => Err(fields.doc.err_at(at, format!("{shape}, not `{text}`"))),
            }
        }
        other => Err(fields
            .doc
            .err_at(at, format!("{shape}, not {}", type_name(other)))),
    }
}

fn read_snapshot(
    fields: &Fields<'_, '_>,
    spans: &mut StepSpans,
) -> Result<SnapshotStep, ScenarioError> {
    let fields = fields.named("a snapshot step");
    fields.deny_unknown(&SNAPSHOT_FIELDS)?;
    let (name, name_at) = fields.req_name("snapshot", true)?;
    spans.fields.insert("snapshot", name_at);
    let (peer, peer_at) = fields.req_str("peer")?;
    spans.fields.insert("peer", peer_at);
    let wallet = match fields.get("wallet") {
        None => return Err(fields.missing("wallet")),
        Some(value) => match fields.doc.to_json(value, &mut spans.refs)? {
            Value::String(wallet) => wallet,
            _ => return Err(fields.bad_type("wallet", "a string")),
        },
    };
    let ops_value = fields.get("ops").ok_or_else(|| fields.missing("ops"))?;
    let DeValue::Array(items) = ops_value.get_ref() else {
        return Err(fields.bad_type("ops", "an array of op names"));
    };
    if items.is_empty() {
        return Err(fields
            .doc
            .err(&ops_value.span(), "`ops` of a snapshot is empty"));
    }
    let mut ops: Vec<String> = Vec::new();
    for item in items.iter() {
        let at = fields.doc.loc(item.span().start);
        let DeValue::String(op) = item.get_ref() else {
            return Err(fields.doc.err_at(
                at,
                format!(
                    "`ops` entries must be op names, not {}",
                    type_name(item.get_ref())
                ),
            ));
        };
        fields.check_name("ops", op, at, false)?;
        if ops.iter().any(|o| o == op.as_ref()) {
            return Err(fields
                .doc
                .err_at(at, format!("op `{op}` appears twice in `ops`")));
        }
        ops.push(op.to_string());
    }
    let timeout = fields.opt_millis("timeout_ms")?.map(Duration::from_millis);
    Ok(SnapshotStep {
        name,
        peer,
        wallet,
        ops,
        timeout,
    })
}

fn read_assert(
    fields: &Fields<'_, '_>,
    spans: &mut StepSpans,
) -> Result<AssertStep, ScenarioError> {
    let fields = fields.named("an assertion step");
    fields.deny_unknown(&ASSERT_FIELDS)?;
    let (name, name_at) = fields.req_str("assert")?;
    if name.trim().is_empty() {
        return Err(fields.doc.err_at(name_at, "an assertion's name is empty"));
    }
    spans.fields.insert("assert", name_at);
    let (kind_text, kind_at) = fields.req_str("kind")?;
    let kind = AssertKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind_text)
        .ok_or_else(|| {
            let kinds: Vec<&str> = AssertKind::ALL.iter().map(|k| k.as_str()).collect();
            fields.doc.err_at(
                kind_at,
                format!(
                    "unknown assertion kind `{kind_text}` (kinds: {})",
                    kinds.join(", ")
                ),
            )
        })?;
    let severity = match fields.opt_str("severity")? {
        None => Severity::default(),
        Some((text, _)) if text == "error" => Severity::Error,
        Some((text, _)) if text == "warning" => Severity::Warning,
        Some((text, at)) => {
            return Err(fields.doc.err_at(
                at,
                format!("unknown severity `{text}` (severities: error, warning)"),
            ));
        }
    };
    let (needed, not_allowed): (&[&str], &[&str]) = match kind {
        AssertKind::Equal | AssertKind::Contains => {
            (&["left", "right"], &["tolerance", "values", "total"])
        }
        AssertKind::Approx => (&["left", "right", "tolerance"], &["values", "total"]),
        AssertKind::Conservation => (&["values", "total"], &["left", "right", "tolerance"]),
    };
    if let Some(key) = not_allowed.iter().find(|key| fields.get(key).is_some()) {
        let span = fields.key_span(key).unwrap_or(fields.span.clone());
        return Err(fields.doc.err(
            &span,
            format!(
                "`{key}` does not apply to a `{kind}` assertion (it takes: {})",
                needed.join(", ")
            ),
        ));
    }
    if let Some(key) = needed.iter().find(|key| fields.get(key).is_none()) {
        return Err(fields.doc.err(
            &fields.span,
            format!(
                "`{kind}` assertion `{name}` is missing `{key}` (it takes: {})",
                needed.join(", ")
            ),
        ));
    }
    let mut operand = |key: &str| -> Result<Value, ScenarioError> {
        Ok(fields
            .opt_json(key, &mut spans.refs)?
            .unwrap_or(Value::Null))
    };
    let check = match kind {
        AssertKind::Equal => Check::Equal {
            left: operand("left")?,
            right: operand("right")?,
        },
        AssertKind::Contains => Check::Contains {
            left: operand("left")?,
            right: operand("right")?,
        },
        AssertKind::Approx => Check::Approx {
            left: operand("left")?,
            right: operand("right")?,
            tolerance: literal_decimal(&fields, "tolerance", operand("tolerance")?)?,
        },
        AssertKind::Conservation => {
            let values = match operand("values")? {
                Value::Array(values) if !values.is_empty() => values,
                Value::Array(_) => {
                    let at = fields
                        .get("values")
                        .map_or(fields.doc.loc(fields.span.start), |v| {
                            fields.doc.loc(v.span().start)
                        });
                    return Err(fields.doc.err_at(
                        at,
                        format!(
                            "`values` of `conservation` assertion `{name}` is empty; list the amounts that must add up to `total`"
                        ),
                    ));
                }
                _ => return Err(fields.bad_type("values", "an array of amounts")),
            };
            let total = literal_decimal(&fields, "total", operand("total")?)?;
            Check::Conservation { values, total }
        }
    };
    Ok(AssertStep {
        name,
        severity,
        check,
    })
}

/// A `total` or `tolerance` written as a literal must already be a decimal
/// (caught at load rather than after an hour of soak); one holding a
/// variable is checked when evaluated.
fn literal_decimal(
    fields: &Fields<'_, '_>,
    key: &str,
    value: Value,
) -> Result<Value, ScenarioError> {
    let literal = match &value {
        Value::String(s) if s.contains("${") => return Ok(value),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(fields.bad_type(key, "a decimal amount (a string like \"200\")")),
    };
    let parses = rust_decimal::Decimal::from_str_exact(&literal).is_ok()
        || rust_decimal::Decimal::from_scientific(&literal).is_ok();
    if parses {
        return Ok(value);
    }
    let at = fields
        .get(key)
        .map_or(Location::default(), |v| fields.doc.loc(v.span().start));
    Err(fields
        .doc
        .err_at(at, format!("`{key}` `{literal}` is not a decimal amount")))
}
