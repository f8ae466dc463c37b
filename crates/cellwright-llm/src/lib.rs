//! # cellwright-llm
//!
//! [`ChatModel`](cellwright_core::ChatModel) backends:
//! - [`embedded::EmbeddedChat`]: a GGUF chat model (SmolLM2-135M by default) running in
//!   this process with candle, its tool calls decoded under a JSON-schema grammar.
//! - [`OpenAiChat`]: any OpenAI-compatible chat-completions endpoint (tool calls, streaming,
//!   retries on 429/5xx/timeouts, typed errors for malformed replies). The API key is read
//!   from the environment and never stored or logged.
//! - [`ScriptedModel`]: answers from a script (a JSONL file or a function), for tests,
//!   examples and benchmarks.
//! - [`ScriptedModel::replay`]: answers with a stored run's model responses, so a run can be
//!   re-executed deterministically.
//!
//! [`model_from_spec`] builds one from a `backend:name` string as the CLI takes it.

pub mod embedded;
mod openai;
mod scripted;
#[cfg(feature = "testing")]
pub mod testing;

pub use openai::{OpenAiChat, OpenAiConfig};
pub use scripted::{ScriptedModel, ScriptedResponse, ScriptedToolCall};

use std::sync::Arc;

use cellwright_core::{ChatModel, ModelError};

/// Builds a chat model from `openai:<name>` or `script:<file.jsonl>`.
/// (`replay:<run>` needs a store and is built by the caller with [`ScriptedModel::replay`].)
pub fn model_from_spec(spec: &str) -> Result<Arc<dyn ChatModel>, ModelError> {
    let (backend, name) = spec.split_once(':').ok_or_else(|| ModelError::Config {
        message: format!(
            "model `{spec}` is not of the form backend:name (e.g. openai:gpt-4o-mini)"
        ),
    })?;
    match backend {
        "openai" => Ok(Arc::new(OpenAiChat::new(OpenAiConfig::from_env(name)?)?)),
        "script" => Ok(Arc::new(ScriptedModel::from_file(name)?)),
        other => Err(ModelError::Config {
            message: format!(
                "unknown model backend `{other}` (known: embedded, gguf, openai, script, replay)"
            ),
        }),
    }
}
