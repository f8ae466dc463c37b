//! # cellwright-runtime
//!
//! The agent loop. An [`Agent`] asks its [`ChatModel`](cellwright_core::ChatModel) what to
//! do, runs the tool calls of each step concurrently (bounded, each with a timeout and the
//! run's cancellation), feeds results back, and ends with an
//! [`Answer`](cellwright_core::Answer) whose claims cite tool calls.
//!
//! Invariants (see `docs/architecture.md`):
//! - **Write-ahead**: every model response and tool result is recorded in the
//!   [`TraceStore`](cellwright_core::TraceStore) before it is used.
//! - **Resume**: [`Agent::resume`] rebuilds a run from its trace. Recorded responses and
//!   tool results are reused; a call that started but never finished is run again only with
//!   its repetition recorded (`attempt` 2, 3, …).
//! - **Budgets** on steps, tool calls, tokens and wall time end a run with a status and the
//!   best partial answer; cancellation ends it as `cancelled` with a complete trace.
//! - The loop knows traits only: any model backend, any store, any tools.

mod agent;
mod replay;

pub use agent::{
    Agent, AgentConfig, NoObserver, RunObserver, RunOutcome, RuntimeError, SYSTEM_PROMPT,
};
