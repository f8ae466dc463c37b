//! Question sets for the agent: one JSON object per line, each a question and the checks its
//! answer must pass.
//!
//! ```json
//! {"id": "spi1-go", "question": "…", "check": {"must_include_all": ["myeloid"], "must_include_any": ["SPI1", "PU.1"], "must_not_include": ["GATA1"]}}
//! ```
//!
//! Checks are case-insensitive substring tests on the answer text; every key is optional.
//! `must_not_include` keeps an answer from passing by listing everything.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What an answer must (and must not) say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Check {
    /// Every one of these.
    pub must_include_all: Vec<String>,
    /// At least one of these (ignored when empty).
    pub must_include_any: Vec<String>,
    /// None of these.
    pub must_not_include: Vec<String>,
}

/// One question of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub check: Check,
}

/// The first check an answer failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum FailedCheck {
    /// These required strings were missing.
    MustIncludeAll { missing: Vec<String> },
    /// None of these was there.
    MustIncludeAny { expected_one_of: Vec<String> },
    /// These forbidden strings were there.
    MustNotInclude { found: Vec<String> },
}

impl fmt::Display for FailedCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            FailedCheck::MustIncludeAll { missing } => {
                write!(f, "must_include_all: missing {}", list(missing))
            }
            FailedCheck::MustIncludeAny { expected_one_of } => {
                write!(f, "must_include_any: none of {}", list(expected_one_of))
            }
            FailedCheck::MustNotInclude { found } => {
                write!(f, "must_not_include: found {}", list(found))
            }
        }
    }
}

impl Check {
    /// Judges `answer`: `Ok` when every check passes, else the first that failed (in the
    /// order all, any, not).
    pub fn judge(&self, answer: &str) -> Result<(), FailedCheck> {
        let text = answer.to_lowercase();
        let has = |s: &String| text.contains(&s.to_lowercase());
        let missing: Vec<String> = self
            .must_include_all
            .iter()
            .filter(|s| !has(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(FailedCheck::MustIncludeAll { missing });
        }
        if !self.must_include_any.is_empty() && !self.must_include_any.iter().any(has) {
            return Err(FailedCheck::MustIncludeAny {
                expected_one_of: self.must_include_any.clone(),
            });
        }
        let found: Vec<String> = self
            .must_not_include
            .iter()
            .filter(|s| has(s))
            .cloned()
            .collect();
        if !found.is_empty() {
            return Err(FailedCheck::MustNotInclude { found });
        }
        Ok(())
    }
}

/// A question set that cannot be used, with the file and line at fault.
#[derive(Debug, thiserror::Error)]
pub enum QuestionsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a question: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: no questions")]
    Empty { path: PathBuf },
}

/// Reads a question set; blank lines and lines starting with `//` are skipped. Ids must be
/// unique, non-empty and usable as file names; questions and check strings non-empty.
pub fn read_questions(path: &Path) -> Result<Vec<Question>, QuestionsError> {
    let text = std::fs::read_to_string(path).map_err(|source| QuestionsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut questions: Vec<Question> = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let invalid = |message: String| QuestionsError::Invalid {
            path: path.to_owned(),
            line: line_no,
            message,
        };
        let q: Question = serde_json::from_str(line).map_err(|e| QuestionsError::Parse {
            path: path.to_owned(),
            line: line_no,
            message: e.to_string(),
        })?;
        let id_ok = !q.id.is_empty()
            && q.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !q.id.starts_with('.');
        if !id_ok {
            return Err(invalid(format!(
                "id `{}` must be non-empty ASCII letters, digits, `-`, `_` or `.`, not starting with `.`",
                q.id
            )));
        }
        if !ids.insert(q.id.clone()) {
            return Err(invalid(format!("id `{}` appears twice", q.id)));
        }
        if q.question.trim().is_empty() {
            return Err(invalid(format!("question `{}` is empty", q.id)));
        }
        let strings = [
            ("must_include_all", &q.check.must_include_all),
            ("must_include_any", &q.check.must_include_any),
            ("must_not_include", &q.check.must_not_include),
        ];
        for (key, values) in strings {
            if values.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid(format!(
                    "question `{}`: {key} has an empty string (it would match every answer)",
                    q.id
                )));
            }
        }
        questions.push(q);
    }
    if questions.is_empty() {
        return Err(QuestionsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(all: &[&str], any: &[&str], not: &[&str]) -> Check {
        let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Check {
            must_include_all: own(all),
            must_include_any: own(any),
            must_not_include: own(not),
        }
    }

    #[test]
    fn checks_are_case_insensitive_substrings_in_order() {
        let c = check(&["spi1", "Myeloid"], &["GATA1", "cebpa"], &["erythroid"]);
        assert_eq!(c.judge("SPI1 drives MYELOID fate with CEBPA [1]."), Ok(()));
        assert_eq!(
            c.judge("SPI1 and CEBPA"),
            Err(FailedCheck::MustIncludeAll {
                missing: vec!["Myeloid".into()]
            })
        );
        assert!(matches!(
            c.judge("spi1 myeloid"),
            Err(FailedCheck::MustIncludeAny { .. })
        ));
        let listed = c.judge("spi1 myeloid gata1 or erythroid");
        assert_eq!(
            listed,
            Err(FailedCheck::MustNotInclude {
                found: vec!["erythroid".into()]
            })
        );
        assert_eq!(
            listed.unwrap_err().to_string(),
            "must_not_include: found \"erythroid\""
        );
        assert_eq!(Check::default().judge(""), Ok(()));
    }

    #[test]
    fn bad_sets_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        let cases = [
            ("", "no questions"),
            ("{\"id\": \"a\"}", ":1: not a question"),
            (
                "// c\n{\"id\": \"a\", \"question\": \"q\", \"chek\": {}}",
                ":2: not a question",
            ),
            (
                "{\"id\": \"a\", \"question\": \"q\"}\n{\"id\": \"a\", \"question\": \"r\"}",
                ":2: id `a` appears twice",
            ),
            ("{\"id\": \"a/b\", \"question\": \"q\"}", ":1: id `a/b`"),
            ("{\"id\": \"a\", \"question\": \" \"}", "is empty"),
            (
                "{\"id\": \"a\", \"question\": \"q\", \"check\": {\"must_include_any\": [\"\"]}}",
                "must_include_any has an empty string",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let e = read_questions(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        std::fs::write(&path, "{\"id\": \"a.1\", \"question\": \"q\"}\n").unwrap();
        assert_eq!(read_questions(&path).unwrap()[0].check, Check::default());
    }
}
