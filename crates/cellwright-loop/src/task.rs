//! The task file: what to find, in which experiments, with what budget and strategies.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A hypothesis-loop task, as read from its JSON file (docs/loop.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// A short name for reports.
    pub name: String,
    pub backend: BackendSpec,
    /// Which end of the phenotype the loop looks for.
    pub direction: Direction,
    /// The genes the loop may knock out: `"all"` (every gene the backend measures) or a list.
    #[serde(default)]
    pub candidates: Candidates,
    pub rounds: u32,
    /// Experiments per round.
    pub batch: u32,
    /// Hits are the true top `top_k` candidates.
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// Strategies to run, each in its own loop over the same candidates.
    #[serde(default = "default_strategies", deserialize_with = "one_or_many")]
    pub strategy: Vec<StrategyKind>,
    #[serde(default)]
    pub seed: u64,
}

fn default_top_k() -> u32 {
    20
}

fn default_strategies() -> Vec<StrategyKind> {
    vec![StrategyKind::Agent]
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<StrategyKind>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(StrategyKind),
        Many(Vec<StrategyKind>),
    }
    // Untagged enums hide the inner error; say what is accepted instead.
    let value = serde_json::Value::deserialize(d)?;
    match OneOrMany::deserialize(&value) {
        Ok(OneOrMany::One(s)) => Ok(vec![s]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(format!(
            "unknown strategy {value}; expected one of agent, random, greedy, knowledge_prior, or a list of them"
        ))),
    }
}

/// Where experiments run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackendSpec {
    /// Knock out a node of a published Boolean model and simulate cells; the phenotype is the
    /// named node's mean mRNA level, as a fraction of its maximum.
    Simulator {
        /// A model of the catalogue (e.g. `krumsiek11`) or a .bnet file.
        model: String,
        /// The node whose level is the phenotype.
        node: String,
        /// Cells simulated per experiment.
        #[serde(default = "default_cells")]
        cells: usize,
    },
    /// Reveal a gene's measured CRISPR effect in the DepMap table; the phenotype is the mean
    /// gene effect over the chosen cell lines.
    Depmap {
        /// `liver`, `melanoma` or `neuroblastoma`.
        screen: String,
        /// DepMap ids (`ACH-…`) of the cell lines to average; all of the screen's if absent.
        #[serde(default)]
        cell_lines: Option<Vec<String>>,
    },
}

fn default_cells() -> usize {
    64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Knockouts that lower the phenotype most (e.g. the most harmful).
    Min,
    /// Knockouts that raise it most.
    Max,
}

impl Direction {
    /// `value` turned so that larger is better.
    pub fn orient(self, value: f64) -> f64 {
        match self {
            Direction::Min => -value,
            Direction::Max => value,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Candidates {
    /// Written `"all"`.
    #[default]
    All,
    Genes(Vec<String>),
}

impl Serialize for Candidates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Candidates::All => s.serialize_str("all"),
            Candidates::Genes(genes) => genes.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Candidates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "all" => Ok(Candidates::All),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|g| match g {
                    serde_json::Value::String(g) => Ok(g),
                    other => Err(serde::de::Error::custom(format!(
                        "candidates must be gene symbols, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Candidates::Genes),
            other => Err(serde::de::Error::custom(format!(
                "candidates must be \"all\" or a list of genes, not {other}"
            ))),
        }
    }
}

/// How a loop picks its next experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// The language model picks from the candidates the evidence ranks highest, with a
    /// hypothesis per pick.
    Agent,
    /// Uniformly at random.
    Random,
    /// The best predicted by similarity to the genes tested so far (gene-set features).
    Greedy,
    /// Prior knowledge only, no learning: membership of essential-machinery gene sets
    /// (DepMap) or closeness upstream of the phenotype node (simulator).
    KnowledgePrior,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 4] = [
        StrategyKind::Agent,
        StrategyKind::Random,
        StrategyKind::Greedy,
        StrategyKind::KnowledgePrior,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Agent => "agent",
            StrategyKind::Random => "random",
            StrategyKind::Greedy => "greedy",
            StrategyKind::KnowledgePrior => "knowledge_prior",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Why a task file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("cannot read the task file {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Task {
    /// Reads and checks a task file.
    pub fn read(path: &Path) -> Result<Self, TaskError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TaskError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks a task; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, TaskError> {
        let task: Task = serde_json::from_str(text).map_err(|e| TaskError::Parse {
            path: source.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_owned(),
        })?;
        task.check().map_err(|message| TaskError::Invalid {
            path: source.to_owned(),
            message,
        })?;
        Ok(task)
    }

    /// The checks that need no data: budgets and lists.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("rounds", self.rounds),
            ("batch", self.batch),
            ("top_k", self.top_k),
        ] {
            if value == 0 {
                return Err(format!("{field} is 0: the loop would run no experiment"));
            }
        }
        if let Candidates::Genes(genes) = &self.candidates {
            if genes.is_empty() {
                return Err("the candidate set is empty".into());
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = genes.iter().find(|g| !seen.insert(g.as_str())) {
                return Err(format!("candidate {twice} is listed twice"));
            }
        }
        if self.strategy.is_empty() {
            return Err("no strategy to run".into());
        }
        if let BackendSpec::Simulator { cells: 0, .. } = self.backend {
            return Err("backend.cells is 0: an experiment needs cells".into());
        }
        Ok(())
    }

    /// Experiments each strategy runs.
    pub fn budget(&self) -> usize {
        self.rounds as usize * self.batch as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"name": "t", "backend": {"kind": "depmap", "screen": "liver"},
        "direction": "min", "rounds": 2, "batch": 5}"#;

    #[test]
    fn defaults_fill_what_is_left_out() {
        let t = Task::parse(GOOD, "t.json").unwrap();
        assert_eq!(t.candidates, Candidates::All);
        assert_eq!(t.top_k, 20);
        assert_eq!(t.strategy, [StrategyKind::Agent]);
        assert_eq!(t.budget(), 10);
        let again: Task = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn strategies_are_one_or_a_list() {
        let t = GOOD.replace(
            "\"batch\": 5",
            "\"batch\": 5, \"strategy\": [\"random\", \"greedy\"]",
        );
        let t = Task::parse(&t, "t").unwrap();
        assert_eq!(t.strategy, [StrategyKind::Random, StrategyKind::Greedy]);
        let bad = GOOD.replace("\"batch\": 5", "\"batch\": 5, \"strategy\": \"clever\"");
        let err = Task::parse(&bad, "t").unwrap_err().to_string();
        assert!(err.contains("unknown strategy \"clever\""), "{err}");
    }

    #[test]
    fn bad_tasks_say_what_is_wrong() {
        let cases = [
            (
                GOOD.replace("depmap", "crispr"),
                "unknown variant `crispr`, expected `simulator` or `depmap`",
            ),
            (
                GOOD.replace("\"batch\": 5", "\"batch\": 0"),
                "batch is 0: the loop would run no experiment",
            ),
            (
                GOOD.replace("\"rounds\": 2", "\"rounds\": 0"),
                "rounds is 0",
            ),
            (
                GOOD.replace("\"batch\": 5", "\"batch\": 5, \"candidates\": []"),
                "the candidate set is empty",
            ),
            (
                GOOD.replace(
                    "\"batch\": 5",
                    "\"batch\": 5, \"candidates\": [\"A\", \"A\"]",
                ),
                "candidate A is listed twice",
            ),
            (
                GOOD.replace("\"batch\": 5", "\"batch\": 5, \"candidates\": \"some\""),
                "candidates",
            ),
            (
                GOOD.replace("\"min\"", "\"lowest\""),
                "unknown variant `lowest`",
            ),
            (
                GOOD.replace("\"batch\": 5", "\"batch\": 5, \"strategy\": []"),
                "no strategy to run",
            ),
            (
                GOOD.replace(
                    "{\"kind\": \"depmap\", \"screen\": \"liver\"}",
                    "{\"kind\": \"simulator\", \"model\": \"m\", \"node\": \"n\", \"cells\": 0}",
                ),
                "backend.cells is 0",
            ),
            (GOOD.replace("\"rounds\": 2,", ""), "missing field `rounds`"),
            (
                GOOD.replace("\"rounds\": 2", "\"rounds\": -1"),
                "invalid value",
            ),
        ];
        for (text, wanted) in cases {
            let err = Task::parse(&text, "task.json").unwrap_err().to_string();
            assert!(err.starts_with("task.json"), "{err}");
            assert!(err.contains(wanted), "{wanted}: {err}");
        }
    }
}
