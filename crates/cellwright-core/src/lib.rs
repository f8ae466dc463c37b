//! # cellwright-core
//!
//! The contracts every other cellwright crate builds on, and nothing else: the typed
//! [`Tool`] trait and its erased form [`DynTool`], the [`ToolRegistry`] that validates
//! arguments against generated JSON Schemas, the [`ToolCtx`] a tool may use, the
//! [`ChatModel`] and [`Embedder`] traits, the closed [`TraceEvent`] enum with its
//! [`TraceSink`]/[`TraceStore`], and [`Answer`]s whose claims cite tool calls.
//!
//! No async runtime, HTTP client, database or numeric backend is linked here, so a tool
//! author depends on this crate alone.
//!
//! ## A plugin in one struct
//!
//! ```
//! use cellwright_core::{Tool, ToolCtx, ToolError, ToolRegistry};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! /// Counts codons in a coding sequence.
//! struct CountCodons;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// Coding DNA sequence; its length must be a multiple of 3.
//!     sequence: String,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Output {
//!     codons: usize,
//! }
//!
//! impl Tool for CountCodons {
//!     const NAME: &'static str = "count_codons";
//!     type Args = Args;
//!     type Output = Output;
//!
//!     fn description(&self) -> String {
//!         "Number of codons in a coding DNA sequence.".into()
//!     }
//!
//!     async fn call(&self, _ctx: &ToolCtx, args: Args) -> Result<Output, ToolError> {
//!         if args.sequence.len() % 3 != 0 {
//!             return Err(ToolError::failed("length is not a multiple of 3"));
//!         }
//!         Ok(Output { codons: args.sequence.len() / 3 })
//!     }
//! }
//!
//! let mut registry = ToolRegistry::new();
//! registry.register(CountCodons).unwrap();
//! let ctx = ToolCtx::detached(0);
//! let out = futures::executor::block_on(
//!     registry.call(&ctx, "count_codons", serde_json::json!({"sequence": "ATGAAATAG"})),
//! );
//! assert_eq!(out.unwrap(), serde_json::json!({"codons": 3}));
//!
//! // Wrong argument types are reported with their JSON path, for the model to repair.
//! let err = futures::executor::block_on(
//!     registry.call(&ctx, "count_codons", serde_json::json!({"sequence": 42})),
//! );
//! assert!(err.unwrap_err().to_string().contains("`/sequence`"));
//! ```

pub mod answer;
pub mod cancel;
pub mod chat;
pub mod context;
pub mod domain;
pub mod error;
pub mod ids;
pub mod registry;
pub mod tool;
pub mod trace;

pub use answer::{Answer, CallStatus, Claim, Evidence};
pub use cancel::CancelToken;
pub use chat::{
    ChatEvent, ChatModel, ChatRequest, ChatResponse, Embedder, FinishReason, Message, Role,
    ToolCallRequest, ToolChoice, Usage,
};
pub use context::{
    ArtifactRef, ArtifactStore, Clock, MemoryArtifacts, NoProgress, Progress, SystemClock, ToolCtx,
    UnixMillis, call_seed,
};
pub use domain::{CUES_KEYWORD, DOMAIN_KEYWORD, Vocabulary, cues, domains, domains_of};
pub use error::{ArgIssue, ModelError, StoreError, ToolError, closest_matches, did_you_mean};
pub use ids::{ArtifactId, CallId, RunId};
pub use registry::{RegistryError, ToolRegistry};
pub use tool::{DynTool, Effects, Tool, ToolSpec, parse_args, schema_of};
pub use trace::{
    BudgetKind, Budgets, RunStatus, RunSummary, StoredEvent, ToolOutcome, TraceEvent, TraceSink,
    TraceStore,
};
