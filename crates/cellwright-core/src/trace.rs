//! The trace of a run: a closed set of events, written ahead of use through a [`TraceSink`]
//! and read back by a [`TraceStore`] to show, export or resume a run.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::Answer;
use crate::chat::{FinishReason, Message, ToolChoice, Usage};
use crate::context::{ArtifactRef, ArtifactStore, UnixMillis};
use crate::error::{StoreError, ToolError};
use crate::ids::{CallId, RunId};
use crate::tool::Effects;

/// Limits that end a run cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    pub max_steps: u32,
    pub max_tool_calls: u32,
    /// Prompt plus completion tokens over the whole run.
    pub max_tokens: u64,
    /// Wall time of one invocation (a resumed run gets the full budget again).
    pub max_wall_ms: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_steps: 12,
            max_tool_calls: 48,
            max_tokens: 200_000,
            max_wall_ms: 15 * 60 * 1000,
        }
    }
}

/// Which budget ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    Steps,
    ToolCalls,
    Tokens,
    WallTime,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    BudgetExhausted,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "budget_exhausted" => Self::BudgetExhausted,
            "cancelled" => Self::Cancelled,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    Ok(Value),
    Err(ToolError),
}

impl ToolOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }
}

/// Everything that happens in a run. Closed: backends store it, tools never see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceEvent {
    RunStarted {
        question: String,
        /// `backend:name` of the chat model, enough to rebuild it on resume.
        model: String,
        system_prompt: String,
        tools: Vec<String>,
        budgets: Budgets,
        seed: u64,
    },
    /// A killed or interrupted run was picked up again.
    RunResumed { attempt: u32 },
    ModelRequest {
        step: u32,
        messages: usize,
        tool_choice: ToolChoice,
    },
    ModelResponse {
        step: u32,
        message: Message,
        usage: Usage,
        latency_ms: u64,
        model: String,
        finish_reason: FinishReason,
    },
    /// A model call failed; `will_retry` says whether the runtime tries again.
    ModelFailed {
        step: u32,
        error: String,
        will_retry: bool,
    },
    ToolCallStarted {
        step: u32,
        call: CallId,
        tool: String,
        arguments: Value,
        effects: Effects,
        /// 1 for the first execution; more when a resumed run repeats an unfinished call.
        attempt: u32,
    },
    ToolCallFinished {
        step: u32,
        call: CallId,
        tool: String,
        outcome: ToolOutcome,
        duration_ms: u64,
        attempt: u32,
    },
    Artifact {
        call: Option<CallId>,
        artifact: ArtifactRef,
    },
    RunFinished {
        status: RunStatus,
        answer: Option<Answer>,
        usage: Usage,
        steps: u32,
        tool_calls: u32,
        /// Why the run ended when it did not complete: which budget, what failed.
        reason: Option<String>,
        budget: Option<BudgetKind>,
    },
}

impl TraceEvent {
    /// The `type` tag, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run_started",
            Self::RunResumed { .. } => "run_resumed",
            Self::ModelRequest { .. } => "model_request",
            Self::ModelResponse { .. } => "model_response",
            Self::ModelFailed { .. } => "model_failed",
            Self::ToolCallStarted { .. } => "tool_call_started",
            Self::ToolCallFinished { .. } => "tool_call_finished",
            Self::Artifact { .. } => "artifact",
            Self::RunFinished { .. } => "run_finished",
        }
    }
}

/// An event as stored: its position in the run and when it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub at_ms: UnixMillis,
    pub event: TraceEvent,
}

/// One line of `trace list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub question: String,
    pub model: String,
    pub status: RunStatus,
    pub started_ms: UnixMillis,
    pub finished_ms: Option<UnixMillis>,
    pub steps: u32,
    pub tool_calls: u32,
}

/// Where events go. `record` returns only once the event is durable: the runtime relies on
/// that to never use a model response or tool result that a crash could lose.
pub trait TraceSink: Send + Sync {
    /// Stores `event` and returns its sequence number once it is durable.
    fn record<'a>(
        &'a self,
        run: &'a RunId,
        event: &'a TraceEvent,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Queues `event` to be stored before any event recorded after it, without waiting for
    /// it to be durable. For events nothing depends on if a crash loses them (a model
    /// request, the start of a pure tool call). Sinks without a queue store it at once.
    fn record_deferred<'a>(
        &'a self,
        run: &'a RunId,
        event: &'a TraceEvent,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.record(run, event).await.map(|_| ()) })
    }
}

/// A durable store of runs: traces to write and read back, and artifacts.
pub trait TraceStore: TraceSink + ArtifactStore {
    /// All events of a run, in order.
    fn events<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>>;

    /// The newest runs first.
    fn runs(&self, limit: u32) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>>;
}
