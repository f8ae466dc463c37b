//! A tool plugin in one struct: write the typed function, register it, and an agent can
//! call it with schema validation, tracing and a stored trace for free.
//!
//! Run it: `cargo run -p cellwright-examples --example custom_tool`. It is offline: the
//! model is scripted, the store is a SQLite file in a temporary folder.

use std::collections::BTreeMap;
use std::sync::Arc;

use cellwright_core::{CancelToken, RunId, Tool, ToolCtx, ToolError, ToolRegistry, TraceStore};
use cellwright_llm::{ScriptedModel, ScriptedResponse, ScriptedToolCall};
use cellwright_runtime::{Agent, AgentConfig, RunOutcome};
use cellwright_store::SqliteStore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The plugin: codon usage of a coding sequence.
struct CodonUsage;

#[derive(Deserialize, JsonSchema)]
struct CodonUsageArgs {
    /// Coding DNA sequence, starting at a codon boundary.
    sequence: String,
    /// How many of the most used codons to return.
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 64))]
    top: usize,
}

fn five() -> usize {
    5
}

#[derive(Serialize, JsonSchema)]
struct CodonCount {
    codon: String,
    count: usize,
}

#[derive(Serialize, JsonSchema)]
struct CodonUsageOutput {
    codons: usize,
    most_used: Vec<CodonCount>,
}

impl Tool for CodonUsage {
    const NAME: &'static str = "count_codon_usage";
    type Args = CodonUsageArgs;
    type Output = CodonUsageOutput;

    fn description(&self) -> String {
        "Counts how often each codon occurs in a coding DNA sequence and returns the most used ones. \
         Example: {\"sequence\": \"ATGAAAAAGTAA\", \"top\": 2}"
            .into()
    }

    async fn call(
        &self,
        _ctx: &ToolCtx,
        args: CodonUsageArgs,
    ) -> Result<CodonUsageOutput, ToolError> {
        let dna = args.sequence.to_ascii_uppercase();
        if !dna.len().is_multiple_of(3) {
            return Err(ToolError::failed(format!(
                "the sequence has {} bases, not a whole number of codons",
                dna.len()
            )));
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for i in (0..dna.len()).step_by(3) {
            *counts.entry(&dna[i..i + 3]).or_default() += 1;
        }
        let mut most_used: Vec<CodonCount> = counts
            .into_iter()
            .map(|(codon, count)| CodonCount {
                codon: codon.to_owned(),
                count,
            })
            .collect();
        most_used.sort_by(|a, b| b.count.cmp(&a.count).then(a.codon.cmp(&b.codon)));
        most_used.truncate(args.top);
        Ok(CodonUsageOutput {
            codons: dna.len() / 3,
            most_used,
        })
    }
}

/// Registers the plugin next to a built-in tool and runs a scripted agent that uses both.
async fn run_example() -> anyhow_free::Result<RunOutcome> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("runs.db")).await?);

    let mut tools = ToolRegistry::new();
    tools
        .register(CodonUsage)?
        .register(cellwright_tools_sequence::TranslateDna)?;

    let sequence = "ATGAAAAAGAAATAA";
    let call = |name: &str, arguments| ScriptedToolCall {
        name: name.into(),
        arguments,
    };
    let model = ScriptedModel::new(
        "script:custom-tool-example",
        vec![
            ScriptedResponse {
                tool_calls: vec![
                    call("count_codon_usage", json!({"sequence": sequence, "top": 2})),
                    call("translate_dna", json!({"sequence": sequence})),
                ],
                ..Default::default()
            },
            ScriptedResponse {
                content: "AAA is the most used codon, twice [1]. The sequence encodes MKKK and a stop [2].".into(),
                ..Default::default()
            },
        ],
    );

    let agent = Agent::new(
        Arc::new(model),
        Arc::new(tools),
        store as Arc<dyn TraceStore>,
        AgentConfig::default(),
    );
    let outcome = agent
        .run(
            RunId::new("example"),
            "Which codon is most used in ATGAAAAAGAAATAA?",
            CancelToken::new(),
        )
        .await?;
    Ok(outcome)
}

/// Errors of the example, without pulling in an error crate.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[tokio::main]
async fn main() -> anyhow_free::Result<()> {
    let outcome = run_example().await?;
    println!("{}\n", outcome.answer.text);
    for claim in &outcome.answer.claims {
        let cited: Vec<String> = claim
            .evidence
            .iter()
            .map(|e| format!("[{}] {}", e.call, e.tool))
            .collect();
        println!("- {} ← {}", claim.text, cited.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_example_answers_with_supported_claims() {
        let outcome = super::run_example().await.unwrap();
        assert_eq!(outcome.status, cellwright_core::RunStatus::Completed);
        assert_eq!(outcome.answer.claims.len(), 2);
        assert!(outcome.answer.claims.iter().all(|c| c.supported));
        assert_eq!(
            outcome.answer.claims[0].evidence[0].tool,
            "count_codon_usage"
        );
    }
}
