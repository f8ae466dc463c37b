//! Answers made of claims, each citing the tool calls that support it.
//!
//! A model writes its final answer as plain text and cites tool calls by number: `[2]` or
//! `[2, 5]`. [`Answer::from_cited_text`] splits the text into claims (sentences and lines)
//! and checks every citation against the calls of the run: a claim with no citation, or one
//! that cites a call that does not exist or failed, is marked unsupported.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::CallId;

/// A tool call cited as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    pub call: CallId,
    pub tool: String,
}

/// One statement of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Claim {
    /// The statement without its citation marks.
    pub text: String,
    /// Calls it cites that exist and succeeded.
    pub evidence: Vec<Evidence>,
    /// True when at least one valid call is cited and no citation is invalid.
    pub supported: bool,
    /// Why a claim is unsupported, when that is not simply "no citation".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The final answer of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Answer {
    /// The answer as the model wrote it, citations included.
    pub text: String,
    pub claims: Vec<Claim>,
}

/// What the run knows of a cited call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    Succeeded { tool: String },
    Failed { tool: String },
    Unknown,
}

impl Answer {
    /// Splits `text` into claims and resolves their citations with `status`.
    pub fn from_cited_text(text: &str, status: impl Fn(CallId) -> CallStatus) -> Self {
        let mut claims: Vec<Claim> = Vec::new();
        for segment in split_segments(text) {
            let (body, cited) = strip_citations(&segment);
            let body = clean_claim_text(&body);
            if body.is_empty() {
                // Citations standing alone after a sentence belong to that sentence.
                if let Some(last) = claims.last_mut() {
                    attach(last, &cited, &status);
                }
                continue;
            }
            let mut claim = Claim {
                text: body,
                evidence: Vec::new(),
                supported: false,
                note: None,
            };
            attach(&mut claim, &cited, &status);
            claims.push(claim);
        }
        Self {
            text: text.to_owned(),
            claims,
        }
    }

    pub fn unsupported(&self) -> impl Iterator<Item = &Claim> {
        self.claims.iter().filter(|c| !c.supported)
    }
}

fn attach(claim: &mut Claim, cited: &[u32], status: &impl Fn(CallId) -> CallStatus) {
    let mut problems = Vec::new();
    for &n in cited {
        let call = CallId(n);
        match status(call) {
            CallStatus::Succeeded { tool } => {
                if !claim.evidence.iter().any(|e| e.call == call) {
                    claim.evidence.push(Evidence { call, tool });
                }
            }
            CallStatus::Failed { tool } => {
                problems.push(format!("cites call {n} ({tool}), which failed"));
            }
            CallStatus::Unknown => problems.push(format!("cites call {n}, which does not exist")),
        }
    }
    if !problems.is_empty() {
        let note = claim.note.get_or_insert_with(String::new);
        for p in problems {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&p);
        }
    }
    claim.supported = !claim.evidence.is_empty() && claim.note.is_none();
}

/// Splits text at line breaks and at sentence ends (`.`, `!`, `?` followed by whitespace),
/// keeping citation groups that directly follow a sentence end with that sentence.
fn split_segments(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            out.push(std::mem::take(&mut current));
            i += 1;
            continue;
        }
        current.push(c);
        if matches!(c, '.' | '!' | '?') {
            let mut j = i + 1;
            // Absorb `[n]` groups (optionally after spaces) that follow the terminator.
            loop {
                let mut k = j;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                match citation_group_end(&chars, k) {
                    Some(end) => {
                        current.extend(&chars[j..=end]);
                        j = end + 1;
                    }
                    None => break,
                }
            }
            if j >= chars.len() || chars[j].is_whitespace() {
                out.push(std::mem::take(&mut current));
                i = j;
                continue;
            }
            current.extend(&chars[i + 1..j]);
            i = j;
            continue;
        }
        i += 1;
    }
    out.push(current);
    out
}

/// If a citation group `[…]` starts at `start`, the index of its `]`.
fn citation_group_end(chars: &[char], start: usize) -> Option<usize> {
    if chars.get(start) != Some(&'[') {
        return None;
    }
    let close = chars[start..].iter().position(|&c| c == ']')? + start;
    let inner: String = chars[start + 1..close].iter().collect();
    parse_citation(&inner).map(|_| close)
}

/// `3`, `#3`, `3, 5` → the numbers; anything else is not a citation.
fn parse_citation(inner: &str) -> Option<Vec<u32>> {
    let mut numbers = Vec::new();
    for part in inner.split(',') {
        let part = part.trim();
        let part = part.strip_prefix('#').unwrap_or(part);
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        numbers.push(part.parse().ok()?);
    }
    Some(numbers)
}

/// Removes citation groups from a segment, returning the text and the cited numbers.
fn strip_citations(segment: &str) -> (String, Vec<u32>) {
    let mut text = String::new();
    let mut cited = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find(']')
            .and_then(|close| Some((close, parse_citation(&after[..close])?)))
        {
            Some((close, numbers)) => {
                cited.extend(numbers);
                rest = &after[close + 1..];
            }
            None => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    (text, cited)
}

/// Trims list markers and stray spaces; a bare list number is not a claim.
fn clean_claim_text(text: &str) -> String {
    let mut collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Removing a citation leaves a space before the punctuation that followed it.
    for p in [".", ",", ";", ":", "!", "?", ")"] {
        collapsed = collapsed.replace(&format!(" {p}"), p);
    }
    let trimmed = collapsed
        .trim_start_matches(['-', '*', '•'])
        .trim()
        .to_owned();
    let is_list_number = trimmed
        .strip_suffix(['.', ')'])
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if is_list_number || trimmed.chars().all(|c| !c.is_alphanumeric()) {
        String::new()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(call: CallId) -> CallStatus {
        match call.0 {
            1 | 2 => CallStatus::Succeeded {
                tool: format!("tool_{}", call.0),
            },
            3 => CallStatus::Failed {
                tool: "tool_3".into(),
            },
            _ => CallStatus::Unknown,
        }
    }

    fn claims(text: &str) -> Vec<(String, Vec<u32>, bool)> {
        Answer::from_cited_text(text, status)
            .claims
            .into_iter()
            .map(|c| {
                (
                    c.text,
                    c.evidence.iter().map(|e| e.call.0).collect(),
                    c.supported,
                )
            })
            .collect()
    }

    /// A claim's text, the call ids it cites, and whether it is supported.
    type ExpectedClaim<'a> = (&'a str, Vec<u32>, bool);

    #[test]
    fn citations_become_evidence() {
        let cases: Vec<(&str, Vec<ExpectedClaim>)> = vec![
            (
                "ATG codes for Met [1].",
                vec![("ATG codes for Met.", vec![1], true)],
            ),
            (
                "ATG codes for Met.[1] TAA is a stop codon [1, 2].",
                vec![
                    ("ATG codes for Met.", vec![1], true),
                    ("TAA is a stop codon.", vec![1, 2], true),
                ],
            ),
            (
                "The GC content is 0.5. [2]\nNo citation here.",
                vec![
                    ("The GC content is 0.5.", vec![2], true),
                    ("No citation here.", vec![], false),
                ],
            ),
            (
                "- first [#1]\n- second [9]\n- third [3]",
                vec![
                    ("first", vec![1], true),
                    ("second", vec![], false),
                    ("third", vec![], false),
                ],
            ),
            (
                "1. Gene A [1]\n2. Gene B [2]",
                vec![("Gene A", vec![1], true), ("Gene B", vec![2], true)],
            ),
            (
                "See [the table] above.",
                vec![("See [the table] above.", vec![], false)],
            ),
            ("", vec![]),
        ];
        for (text, expected) in cases {
            let expected: Vec<(String, Vec<u32>, bool)> = expected
                .into_iter()
                .map(|(t, e, s)| (t.to_owned(), e, s))
                .collect();
            assert_eq!(claims(text), expected, "{text:?}");
        }
    }

    #[test]
    fn invalid_citations_are_explained() {
        let answer = Answer::from_cited_text("A [1, 9]. B [3].", status);
        assert_eq!(
            answer.claims[0].note.as_deref(),
            Some("cites call 9, which does not exist")
        );
        assert!(!answer.claims[0].supported);
        assert_eq!(
            answer.claims[1].note.as_deref(),
            Some("cites call 3 (tool_3), which failed")
        );
        assert_eq!(answer.unsupported().count(), 2);
    }
}
