//! `script.log`: every request, response and log line of one iteration, in
//! order, timestamped, with section banners, and with secrets redacted.
//!
//! Lines are sent to one writer task, so the peers' readers never block on
//! the disk. Redaction is two-fold: JSON fields the peers declared secret
//! (`mnemonic`) are replaced by `<redacted>`, and every value ever seen in
//! such a field is scrubbed from any later line too (a peer echoing a
//! mnemonic in a log line, an `import_wallet` request carrying it).

use std::{
    collections::BTreeSet,
    io::Write,
    path::Path,
    sync::{Arc, RwLock},
};

use serde_json::Value;
use tokio::sync::mpsc;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Secrets below this length are not scrubbed as values: too likely to
/// match innocent text.
const MIN_SECRET_VALUE_LEN: usize = 8;

/// Knows which fields and values are secret. Cheap to clone; shared.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    state: Arc<RwLock<RedactState>>,
}

#[derive(Debug, Default)]
struct RedactState {
    fields: BTreeSet<String>,
    values: BTreeSet<String>,
}

impl Redactor {
    /// A redactor for the given secret field names.
    pub fn with_fields<I: IntoIterator<Item = String>>(fields: I) -> Redactor {
        let redactor = Redactor::default();
        for field in fields {
            redactor.add_field(&field);
        }
        redactor
    }

    /// Treats `name` as a secret field from now on.
    pub fn add_field(&self, name: &str) {
        self.write().fields.insert(name.to_owned());
    }

    /// The secret field names known so far.
    pub fn fields(&self) -> Vec<String> {
        self.read().fields.iter().cloned().collect()
    }

    /// Scrubs `value` wherever it appears from now on.
    pub fn add_value(&self, value: &str) {
        if value.len() >= MIN_SECRET_VALUE_LEN {
            self.write().values.insert(value.to_owned());
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RedactState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RedactState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// `value` with secret fields replaced (their values are remembered).
    pub fn redact(&self, value: &Value) -> Value {
        let fields = self.read().fields.clone();
        let mut found = Vec::new();
        let redacted = redact_fields(value, &fields, &mut found);
        for secret in found {
            self.add_value(&secret);
        }
        redacted
    }

    /// A JSON line with secret fields redacted and known secret values
    /// scrubbed; a non-JSON line only scrubbed.
    pub fn scrub_json_line(&self, line: &str) -> String {
        match serde_json::from_str::<Value>(line) {
            Ok(value) => self.scrub_text(&self.redact(&value).to_string()),
            Err(_) => self.scrub_text(line),
        }
    }

    /// `text` with every known secret value replaced.
    pub fn scrub_text(&self, text: &str) -> String {
        let state = self.read();
        let mut out = text.to_owned();
        for secret in &state.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

fn redact_fields(value: &Value, fields: &BTreeSet<String>, found: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    if fields.contains(key) {
                        if let Value::String(secret) = inner {
                            found.push(secret.clone());
                        }
                        (key.clone(), Value::String(REDACTED.to_owned()))
                    } else {
                        (key.clone(), redact_fields(inner, fields, found))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| redact_fields(v, fields, found))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sends lines to the script log's writer task.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<String>,
}

impl LogSink {
    /// Creates `path` and a task that appends every line sent to it.
    pub fn create(path: &Path) -> std::io::Result<(LogSink, tokio::task::JoinHandle<()>)> {
        let file = std::fs::File::create(path)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::new(file);
            while let Some(line) = rx.blocking_recv() {
                if writeln!(out, "{line}").is_err() {
                    break;
                }
                // Keep the file current: a crash or Ctrl-C must not lose the
                // lines that explain it.
                if rx.is_empty() && out.flush().is_err() {
                    break;
                }
            }
            let _ = out.flush();
        });
        Ok((LogSink { tx }, writer))
    }

    /// One line from `source`: `>` request, `<` response, `!` its log
    /// stream, `?` something odd, `*` the harness.
    pub fn line(&self, source: &str, direction: char, text: &str) {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = self
            .tx
            .send(format!("{stamp} [{source} {direction}] {text}"));
    }

    /// A section banner.
    pub fn banner(&self, text: &str) {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = self.tx.send(format!("{stamp} ==== {text} ===="));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_fields_are_redacted_and_their_values_scrubbed_later() {
        let redactor = Redactor::with_fields(["mnemonic".to_owned()]);
        let words = "abandon ability able about above absent";
        let line = json!({"id": 1, "ok": true, "result": {"address": "a1", "mnemonic": words}})
            .to_string();
        let scrubbed = redactor.scrub_json_line(&line);
        assert!(!scrubbed.contains(words), "{scrubbed}");
        assert!(scrubbed.contains(REDACTED));
        assert!(scrubbed.contains("a1"));
        // A later log line echoing the phrase is scrubbed too.
        let echoed = redactor.scrub_text(&format!("importing with {words} now"));
        assert_eq!(echoed, format!("importing with {REDACTED} now"));
    }

    #[test]
    fn nested_and_array_fields_are_found() {
        let redactor = Redactor::with_fields(["mnemonic".to_owned()]);
        let value = json!({"args": [{"mnemonic": "secret words here"}]});
        assert_eq!(
            redactor.redact(&value),
            json!({"args": [{"mnemonic": REDACTED}]})
        );
    }
}
