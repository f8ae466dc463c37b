//! Error enums, one per boundary. Each says what failed and where; tool errors also carry
//! the sentence the model reads so it can repair its call.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One problem with a tool call's arguments, located by a JSON pointer (`/genes/2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArgIssue {
    /// JSON pointer to the offending value; empty for the whole argument object.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ArgIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "at the top level: {}", self.message)
        } else {
            write!(f, "at `{}`: {}", self.path, self.message)
        }
    }
}

/// Why a tool call did not produce an output. Stored in the trace and sent to the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolError {
    /// The arguments do not fit the tool's schema or could not be parsed.
    #[error("invalid arguments for `{tool}`: {}", join_issues(issues))]
    InvalidArgs { tool: String, issues: Vec<ArgIssue> },
    /// Something named in the call does not exist: a tool, a gene, a dataset.
    #[error("{what} `{name}` not found{}", suggest(suggestions))]
    NotFound {
        what: String,
        name: String,
        suggestions: Vec<String>,
    },
    /// The tool ran and failed. `retryable` says whether the same call may succeed later.
    #[error("failed: {message}")]
    Failed { message: String, retryable: bool },
    #[error("timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
    #[error("cancelled")]
    Cancelled,
}

fn join_issues(issues: &[ArgIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Up to `most` of `candidates` that look like `query` (Jaro-Winkler similarity, ignoring
/// case, at least `min_score`), best first: the suggestions of a [`ToolError::NotFound`].
pub fn closest_matches<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    min_score: f64,
    most: usize,
) -> Vec<String> {
    let query = query.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&query, &c.to_lowercase()), c))
        .filter(|(score, _)| *score > min_score)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(most)
        .map(|(_, c)| c.to_owned())
        .collect()
}

/// ` (did you mean A, B?)` after an error message, or nothing when there is nothing close.
pub fn did_you_mean<S: AsRef<str>>(suggestions: &[S]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = suggestions.iter().map(AsRef::as_ref).collect();
        format!(" (did you mean {}?)", names.join(", "))
    }
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", quoted_list(suggestions))
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ToolError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn not_found(what: impl Into<String>, name: impl Into<String>) -> Self {
        Self::NotFound {
            what: what.into(),
            name: name.into(),
            suggestions: Vec::new(),
        }
    }

    /// Short stable name of the variant, used in stored rows and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArgs { .. } => "invalid_args",
            Self::NotFound { .. } => "not_found",
            Self::Failed { .. } => "failed",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled => "cancelled",
        }
    }

    /// The sentence the model reads: what went wrong and what it can do about it.
    pub fn for_model(&self) -> String {
        match self {
            Self::InvalidArgs { tool, issues } => format!(
                "The arguments for `{tool}` are invalid: {}. Fix them to match the tool's schema and call it again.",
                join_issues(issues)
            ),
            Self::NotFound {
                what,
                name,
                suggestions,
            } if what == "tool" => format!(
                "There is no tool named `{name}`.{} Use one of the listed tools.",
                if suggestions.is_empty() {
                    String::new()
                } else {
                    format!(" Did you mean {}?", quoted_list(suggestions))
                }
            ),
            Self::NotFound {
                what,
                name,
                suggestions,
            } => format!(
                "No {what} named `{name}` was found.{}",
                if suggestions.is_empty() {
                    String::new()
                } else {
                    format!(" Close matches: {}.", quoted_list(suggestions))
                }
            ),
            Self::Failed {
                message,
                retryable: true,
            } => format!("The tool failed ({message}); the same call may work if tried again."),
            Self::Failed {
                message,
                retryable: false,
            } => format!("The tool failed: {message}. Do not repeat the same call."),
            Self::Timeout { after_ms } => format!(
                "The tool did not finish within {after_ms} ms. Try a smaller request or another tool."
            ),
            Self::Cancelled => "The tool call was cancelled.".to_owned(),
        }
    }
}

/// Why a chat model did not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelError {
    /// The endpoint answered with an HTTP error status.
    #[error("model endpoint returned HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The request never got an answer (connection refused, reset, timed out).
    #[error("could not reach the model endpoint: {message}")]
    Transport { message: String },
    /// The endpoint answered, but not with a chat completion we can read.
    #[error("malformed model response: {message}")]
    Malformed { message: String },
    /// A streamed answer ended before the model finished.
    #[error("the model's stream ended early: {message}")]
    Truncated { message: String },
    /// The prompt does not fit the model's context window.
    #[error("prompt of {tokens} tokens exceeds the context window of {limit}")]
    ContextLength { tokens: usize, limit: usize },
    /// A scripted or replayed model has no response for this request.
    #[error("no recorded model response: {message}")]
    Exhausted { message: String },
    /// A model running in this process failed (weights, tokenizer, grammar, compute).
    #[error("the model failed: {message}")]
    Backend { message: String },
    /// The model is misconfigured (unknown name, missing endpoint).
    #[error("model configuration: {message}")]
    Config { message: String },
    #[error("cancelled")]
    Cancelled,
}

impl ModelError {
    /// Whether the same request may succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::Transport { .. } | Self::Truncated { .. } => true,
            _ => false,
        }
    }
}

/// A failure of the trace/artifact store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {message}")]
    Open { path: String, message: String },
    #[error("the database at {path} is read-only: {message}")]
    ReadOnly { path: String, message: String },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("run `{0}` not found")]
    RunNotFound(String),
    #[error("artifact `{0}` not found")]
    ArtifactNotFound(String),
    #[error("stored record is corrupt ({what}): {message}")]
    Corrupt { what: String, message: String },
    #[error("database error: {0}")]
    Database(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_ignore_case_and_come_best_first() {
        let names = ["GAPDH", "GAPDHS", "ACTB", "gapdh2"];
        let all = closest_matches("Gapdhh", names, 0.8, 3);
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(!all.contains(&"ACTB".to_owned()));
        assert_eq!(all[0], "GAPDH");
        assert_eq!(closest_matches("Gapdhh", names, 0.8, 1), ["GAPDH"]);
        assert!(closest_matches("zzz", names, 0.8, 3).is_empty());
    }
}
