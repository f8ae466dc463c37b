//! `cellwright tools list|prompt|call`.

use std::io::IsTerminal;
use std::sync::Arc;

use cellwright_core::{ChatRequest, Message, NoProgress, ToolChoice, ToolCtx, ToolError};
use cellwright_runtime::AgentConfig;
use clap::Subcommand;
use serde_json::json;

use crate::progress::{self, SpinnerProgress};
use crate::{Globals, exit, registry};

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Every tool: name, effects, description (and with --json, the argument and output schemas).
    List {
        #[arg(long)]
        json: bool,
    },
    /// The prompt the embedded model reads for a question, as its chat template renders it:
    /// the system prompt and the tools the router lists (what to look at first when it
    /// picks the wrong tool).
    Prompt {
        question: String,
        /// `embedded` or `gguf:<file.gguf>`.
        #[arg(long, default_value = "embedded")]
        model: String,
    },
    /// Run one tool outside any agent run and print its JSON output or its typed error.
    Call {
        name: String,
        /// The arguments, a JSON object.
        #[arg(default_value = "{}")]
        args: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub async fn run(globals: &Globals, cmd: ToolsCommand) -> anyhow::Result<u8> {
    let registry = registry::default_registry(&globals.notebook)?;
    match cmd {
        ToolsCommand::List { json } => {
            if json {
                let specs: Vec<_> = registry.specs().collect();
                println!("{}", serde_json::to_string_pretty(&specs)?);
            } else {
                for spec in registry.specs() {
                    let first = spec.description.lines().next().unwrap_or("");
                    println!(
                        "{:<20} {:<10} {first}",
                        spec.name,
                        format!("{:?}", spec.effects).to_lowercase()
                    );
                }
            }
            Ok(0)
        }
        ToolsCommand::Prompt { question, model } => {
            let cancel = crate::ask::cancel_on_signals();
            let chat = tokio::task::block_in_place(|| {
                cellwright_llm::embedded::chat_from_spec(&model, &NoProgress, &cancel)
            })
            .ok_or_else(|| {
                anyhow::anyhow!("`{model}` is not an embedded model (embedded, gguf:<file>)")
            })??;
            let chat = crate::vocabulary::with_catalogue(chat);
            let request = ChatRequest {
                messages: vec![
                    Message::system(AgentConfig::default().system_prompt),
                    Message::user(question),
                ],
                tools: registry.specs().cloned().collect(),
                tool_choice: ToolChoice::Auto,
                ..ChatRequest::default()
            };
            print!("{}", chat.prompt(&request)?);
            Ok(0)
        }
        ToolsCommand::Call { name, args, seed } => {
            let mut ctx = ToolCtx::detached(seed);
            let spinner = std::io::stderr().is_terminal().then(progress::spinner);
            if let Some(bar) = &spinner {
                bar.set_message(format!("running {name}"));
                ctx.progress = Arc::new(SpinnerProgress(bar.clone()));
            }
            let result = match registry.parse_arguments(&name, &args) {
                Ok(value) => registry.call(&ctx, &name, value).await,
                Err(e) => Err(e),
            };
            if let Some(bar) = spinner {
                bar.finish_and_clear();
            }
            match result {
                Ok(output) => {
                    println!("{}", serde_json::to_string_pretty(&output)?);
                    Ok(0)
                }
                Err(error) => {
                    print_error(&error)?;
                    Ok(exit::ERROR)
                }
            }
        }
    }
}

fn print_error(error: &ToolError) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "error": error, "message": error.for_model() }))?
    );
    eprintln!("error: {error}");
    Ok(())
}
