//! What a run's trace already holds, folded from its events, so a resumed run reuses it.

use std::collections::HashMap;

use cellwright_core::{
    Answer, BudgetKind, Budgets, CallId, ChatResponse, RunStatus, StoredEvent, ToolOutcome,
    TraceEvent, Usage,
};

/// The parameters a run was started with.
#[derive(Debug, Clone)]
pub(crate) struct RunStart {
    pub question: String,
    pub system_prompt: String,
    pub budgets: Budgets,
    pub seed: u64,
}

/// How a recorded run ended.
#[derive(Debug, Clone)]
pub(crate) struct RecordedEnd {
    pub status: RunStatus,
    pub answer: Option<Answer>,
    pub usage: Usage,
    pub steps: u32,
    pub tool_calls: u32,
    pub reason: Option<String>,
    pub budget: Option<BudgetKind>,
}

#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub start: Option<RunStart>,
    pub responses: HashMap<u32, ChatResponse>,
    /// The latest finished attempt of each call.
    pub finished: HashMap<CallId, ToolOutcome>,
    /// The highest attempt number started for each call.
    pub started: HashMap<CallId, u32>,
    pub end: Option<RecordedEnd>,
    pub resumes: u32,
}

impl Recorded {
    pub fn from_events(events: &[StoredEvent]) -> Self {
        let mut rec = Self::default();
        for stored in events {
            match &stored.event {
                TraceEvent::RunStarted {
                    question,
                    system_prompt,
                    budgets,
                    seed,
                    ..
                } => {
                    rec.start = Some(RunStart {
                        question: question.clone(),
                        system_prompt: system_prompt.clone(),
                        budgets: *budgets,
                        seed: *seed,
                    });
                }
                TraceEvent::RunResumed { attempt } => rec.resumes = rec.resumes.max(*attempt),
                TraceEvent::ModelResponse {
                    step,
                    message,
                    usage,
                    model,
                    finish_reason,
                    ..
                } => {
                    rec.responses.insert(
                        *step,
                        ChatResponse {
                            message: message.clone(),
                            usage: *usage,
                            model: model.clone(),
                            finish_reason: *finish_reason,
                        },
                    );
                }
                TraceEvent::ToolCallStarted { call, attempt, .. } => {
                    let entry = rec.started.entry(*call).or_default();
                    *entry = (*entry).max(*attempt);
                }
                TraceEvent::ToolCallFinished { call, outcome, .. } => {
                    rec.finished.insert(*call, outcome.clone());
                }
                TraceEvent::RunFinished {
                    status,
                    answer,
                    usage,
                    steps,
                    tool_calls,
                    reason,
                    budget,
                } => {
                    rec.end = Some(RecordedEnd {
                        status: *status,
                        answer: answer.clone(),
                        usage: *usage,
                        steps: *steps,
                        tool_calls: *tool_calls,
                        reason: reason.clone(),
                        budget: *budget,
                    });
                }
                TraceEvent::ModelRequest { .. }
                | TraceEvent::ModelFailed { .. }
                | TraceEvent::Artifact { .. } => {}
            }
        }
        rec
    }
}
