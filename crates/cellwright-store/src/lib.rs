//! # cellwright-store
//!
//! Durable storage of agent runs. [`SqliteStore`] implements the core's [`TraceStore`] and
//! [`ArtifactStore`] on one SQLite file in WAL mode: every event is committed before
//! [`TraceSink::record`] returns, which is what lets a killed run resume from its trace.
//!
//! The log (`events`) is append-only; `steps`, `model_calls`, `tool_calls`, `messages` and
//! `claims` are SQL views over it, for people and tools that query the file directly.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cellwright_core::StoreError> {
//! use cellwright_core::TraceStore;
//! let store = cellwright_store::SqliteStore::open("runs.db").await?;
//! for run in store.runs(10).await? {
//!     println!("{} {} {}", run.run_id, run.status.as_str(), run.question);
//! }
//! # Ok(()) }
//! ```

mod sqlite;

pub use sqlite::ledger::{Experiment, Planned};
pub use sqlite::{Durability, SqliteStore, WriteStats};
