//! The plan → act → observe loop.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cellwright_core::{
    Answer, BudgetKind, Budgets, CallId, CallStatus, CancelToken, ChatEvent, ChatModel,
    ChatRequest, ChatResponse, Claim, Clock, Effects, Evidence, Message, ModelError, NoProgress,
    Progress, RunId, RunStatus, StoreError, SystemClock, ToolCallRequest, ToolChoice, ToolCtx,
    ToolError, ToolOutcome, ToolRegistry, TraceEvent, TraceStore, Usage, call_seed,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::replay::{Recorded, RunStart};

/// The system prompt every run starts with unless configured otherwise: what to do, and the
/// answer format (claims citing tool calls as `[n]`).
pub const SYSTEM_PROMPT: &str = include_str!("../../../prompts/system.md");

/// How an agent behaves; stored budgets and seed win when a run is resumed.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub system_prompt: String,
    pub budgets: Budgets,
    /// Tool calls of one step that may run at the same time.
    pub max_concurrent_tools: usize,
    pub tool_timeout: Duration,
    /// Steps in a row whose every call had invalid arguments before the run fails.
    pub max_repairs: u32,
    /// Extra attempts after a retryable model error (backends may retry on their own too).
    pub model_retries: u32,
    /// Tool output longer than this (as JSON text) is stored as an artifact and the model
    /// gets a preview.
    pub max_inline_output: usize,
    pub seed: u64,
    pub temperature: Option<f32>,
    pub max_tokens_per_response: Option<u32>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: SYSTEM_PROMPT.trim().into(),
            budgets: Budgets::default(),
            max_concurrent_tools: 4,
            tool_timeout: Duration::from_secs(120),
            max_repairs: 3,
            model_retries: 2,
            max_inline_output: 8_000,
            seed: 0,
            temperature: None,
            max_tokens_per_response: None,
        }
    }
}

/// Watches a run as it happens (the CLI prints progress with it).
pub trait RunObserver: Send + Sync {
    fn event(&self, _run: &RunId, _event: &TraceEvent) {}
    fn delta(&self, _text: &str) {}
}

/// Watches nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl RunObserver for NoObserver {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub run_id: RunId,
    pub status: RunStatus,
    pub answer: Answer,
    pub usage: Usage,
    pub steps: u32,
    pub tool_calls: u32,
    pub reason: Option<String>,
    pub budget: Option<BudgetKind>,
}

/// Failures that stop the runtime itself (as opposed to a run that ends as `failed`).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The trace could not be written or read: the run stops rather than act unrecorded.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run `{run}` cannot be resumed: {reason}")]
    NotResumable { run: String, reason: String },
}

/// An agent: a model, tools, a store and a configuration.
pub struct Agent {
    model: Arc<dyn ChatModel>,
    tools: Arc<ToolRegistry>,
    store: Arc<dyn TraceStore>,
    clock: Arc<dyn Clock>,
    progress: Arc<dyn Progress>,
    observer: Arc<dyn RunObserver>,
    config: AgentConfig,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.model.id())
            .field("tools", &self.tools)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Agent {
    pub fn new(
        model: Arc<dyn ChatModel>,
        tools: Arc<ToolRegistry>,
        store: Arc<dyn TraceStore>,
        config: AgentConfig,
    ) -> Self {
        Self {
            model,
            tools,
            store,
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
            observer: Arc::new(NoObserver),
            config,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = observer;
        self
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Starts a new run for `question` under the id `run_id`.
    pub async fn run(
        &self,
        run_id: RunId,
        question: &str,
        cancel: CancelToken,
    ) -> Result<RunOutcome, RuntimeError> {
        let start = RunStart {
            question: question.to_owned(),
            system_prompt: self.config.system_prompt.clone(),
            budgets: self.config.budgets,
            seed: self.config.seed,
        };
        let event = TraceEvent::RunStarted {
            question: start.question.clone(),
            model: self.model.id(),
            system_prompt: start.system_prompt.clone(),
            tools: self.tools.specs().map(|s| s.name.clone()).collect(),
            budgets: start.budgets,
            seed: start.seed,
        };
        self.record(&run_id, &event).await?;
        self.drive(run_id, start, Recorded::default(), cancel).await
    }

    /// Continues a run from its stored trace. A finished run returns its recorded outcome.
    pub async fn resume(
        &self,
        run_id: RunId,
        cancel: CancelToken,
    ) -> Result<RunOutcome, RuntimeError> {
        let events = self.store.events(&run_id).await?;
        let recorded = Recorded::from_events(&events);
        if let Some(end) = &recorded.end {
            return Ok(RunOutcome {
                run_id,
                status: end.status,
                answer: end.answer.clone().unwrap_or_else(|| Answer {
                    text: String::new(),
                    claims: Vec::new(),
                }),
                usage: end.usage,
                steps: end.steps,
                tool_calls: end.tool_calls,
                reason: end.reason.clone(),
                budget: end.budget,
            });
        }
        let Some(start) = recorded.start.clone() else {
            return Err(RuntimeError::NotResumable {
                run: run_id.to_string(),
                reason: "its trace has no run_started event".into(),
            });
        };
        self.record(
            &run_id,
            &TraceEvent::RunResumed {
                attempt: recorded.resumes + 1,
            },
        )
        .await?;
        self.drive(run_id, start, recorded, cancel).await
    }

    async fn record(&self, run: &RunId, event: &TraceEvent) -> Result<(), RuntimeError> {
        self.store.record(run, event).await?;
        self.observer.event(run, event);
        Ok(())
    }

    /// Records an event nothing depends on surviving a crash; it is committed with the
    /// next durable one, in order.
    async fn record_deferred(&self, run: &RunId, event: &TraceEvent) -> Result<(), RuntimeError> {
        self.store.record_deferred(run, event).await?;
        self.observer.event(run, event);
        Ok(())
    }

    async fn drive(
        &self,
        run_id: RunId,
        start: RunStart,
        recorded: Recorded,
        cancel: CancelToken,
    ) -> Result<RunOutcome, RuntimeError> {
        let span = tracing::info_span!(
            "cellwright.run",
            run_id = %run_id,
            gen_ai.operation.name = "invoke_agent",
            gen_ai.request.model = %self.model.id(),
        );
        let run_cancel = cancel.child();
        let deadline_hit = Arc::new(AtomicBool::new(false));
        let timer = {
            let run_cancel = run_cancel.clone();
            let deadline_hit = Arc::clone(&deadline_hit);
            let wall = Duration::from_millis(start.budgets.max_wall_ms);
            tokio::spawn(async move {
                tokio::time::sleep(wall).await;
                deadline_hit.store(true, Ordering::SeqCst);
                run_cancel.cancel();
            })
        };
        let mut state = RunState::new(&start);
        let result = Loop {
            agent: self,
            run_id: &run_id,
            start: &start,
            recorded: &recorded,
            cancel: &cancel,
            run_cancel: &run_cancel,
            deadline_hit: &deadline_hit,
        }
        .steps(&mut state)
        .instrument(span)
        .await;
        timer.abort();
        let end = result?;
        let outcome = RunOutcome {
            run_id: run_id.clone(),
            status: end.status,
            answer: end.answer,
            usage: state.usage,
            steps: state.step,
            tool_calls: state.calls_made,
            reason: end.reason,
            budget: end.budget,
        };
        self.record(
            &run_id,
            &TraceEvent::RunFinished {
                status: outcome.status,
                answer: Some(outcome.answer.clone()),
                usage: outcome.usage,
                steps: outcome.steps,
                tool_calls: outcome.tool_calls,
                reason: outcome.reason.clone(),
                budget: outcome.budget,
            },
        )
        .await?;
        Ok(outcome)
    }
}

/// The conversation and counters of a run in progress.
struct RunState {
    messages: Vec<Message>,
    usage: Usage,
    /// Steps begun so far (the model has been asked `step` times).
    step: u32,
    calls_made: u32,
    invalid_rounds: u32,
    /// Outcome of every call so far, for citations and partial answers.
    results: Vec<CallRecord>,
}

struct CallRecord {
    call: CallId,
    tool: String,
    arguments: String,
    outcome: ToolOutcome,
}

impl RunState {
    fn new(start: &RunStart) -> Self {
        Self {
            messages: vec![
                Message::system(start.system_prompt.clone()),
                Message::user(start.question.clone()),
            ],
            usage: Usage::default(),
            step: 0,
            calls_made: 0,
            invalid_rounds: 0,
            results: Vec::new(),
        }
    }

    fn status_of(&self, call: CallId) -> CallStatus {
        match self.results.iter().find(|r| r.call == call) {
            Some(r) if r.outcome.is_ok() => CallStatus::Succeeded {
                tool: r.tool.clone(),
            },
            Some(r) => CallStatus::Failed {
                tool: r.tool.clone(),
            },
            None => CallStatus::Unknown,
        }
    }
}

struct End {
    status: RunStatus,
    answer: Answer,
    reason: Option<String>,
    budget: Option<BudgetKind>,
}

struct Loop<'a> {
    agent: &'a Agent,
    run_id: &'a RunId,
    start: &'a RunStart,
    recorded: &'a Recorded,
    /// The caller's token: cancelled means the user asked to stop.
    cancel: &'a CancelToken,
    /// Cancelled by the caller or by the wall-time budget.
    run_cancel: &'a CancelToken,
    deadline_hit: &'a AtomicBool,
}

impl Loop<'_> {
    async fn steps(&self, state: &mut RunState) -> Result<End, RuntimeError> {
        let budgets = self.start.budgets;
        loop {
            if let Some(end) = self.interrupted(state) {
                return Ok(end);
            }
            if state.step >= budgets.max_steps {
                return Ok(self.exhausted(
                    state,
                    BudgetKind::Steps,
                    format!("the step budget of {} ran out", budgets.max_steps),
                ));
            }
            state.step += 1;
            let step = state.step;
            let span = tracing::info_span!("cellwright.step", step);
            let response = match self
                .model_response(state, step)
                .instrument(span.clone())
                .await?
            {
                Ok(response) => response,
                Err(end) => return Ok(end),
            };
            state.usage.add(response.usage);
            state.messages.push(response.message.clone());
            if state.usage.total() > budgets.max_tokens {
                return Ok(self.exhausted(
                    state,
                    BudgetKind::Tokens,
                    format!("the token budget of {} ran out", budgets.max_tokens),
                ));
            }
            if response.message.tool_calls.is_empty() {
                return Ok(self.final_answer(state, &response.message.content));
            }
            let requested = response.message.tool_calls.len() as u32;
            let allowed = budgets
                .max_tool_calls
                .saturating_sub(state.calls_made)
                .min(requested);
            let calls = &response.message.tool_calls[..allowed as usize];
            self.run_tools(state, step, calls).instrument(span).await?;
            if let Some(end) = self.interrupted(state) {
                return Ok(end);
            }
            if allowed < requested {
                return Ok(self.exhausted(
                    state,
                    BudgetKind::ToolCalls,
                    format!("the tool-call budget of {} ran out", budgets.max_tool_calls),
                ));
            }
            if state.invalid_rounds > self.agent.config.max_repairs {
                return Ok(End {
                    status: RunStatus::Failed,
                    answer: partial_answer(state, "the model kept producing invalid tool calls"),
                    reason: Some(format!(
                        "{} steps in a row had only invalid tool calls",
                        state.invalid_rounds
                    )),
                    budget: None,
                });
            }
        }
    }

    fn interrupted(&self, state: &RunState) -> Option<End> {
        if self.cancel.is_cancelled() {
            return Some(End {
                status: RunStatus::Cancelled,
                answer: partial_answer(state, "the run was cancelled"),
                reason: Some("cancelled by the user".into()),
                budget: None,
            });
        }
        if self.deadline_hit.load(Ordering::SeqCst) {
            let ms = self.start.budgets.max_wall_ms;
            return Some(self.exhausted(
                state,
                BudgetKind::WallTime,
                format!("the wall-time budget of {ms} ms ran out"),
            ));
        }
        None
    }

    fn exhausted(&self, state: &RunState, budget: BudgetKind, reason: String) -> End {
        End {
            status: RunStatus::BudgetExhausted,
            answer: partial_answer(state, &reason),
            reason: Some(reason),
            budget: Some(budget),
        }
    }

    fn final_answer(&self, state: &RunState, text: &str) -> End {
        if text.trim().is_empty() {
            return End {
                status: RunStatus::Completed,
                answer: partial_answer(state, "the model gave an empty answer"),
                reason: Some("the model gave an empty answer".into()),
                budget: None,
            };
        }
        End {
            status: RunStatus::Completed,
            answer: Answer::from_cited_text(text, |call| state.status_of(call)),
            reason: None,
            budget: None,
        }
    }

    /// The model's response for `step`: recorded, or asked for (with retries) and recorded.
    async fn model_response(
        &self,
        state: &RunState,
        step: u32,
    ) -> Result<Result<ChatResponse, End>, RuntimeError> {
        if let Some(response) = self.recorded.responses.get(&step) {
            return Ok(Ok(response.clone()));
        }
        let agent = self.agent;
        let request = ChatRequest {
            messages: state.messages.clone(),
            tools: agent.tools.specs().cloned().collect(),
            tool_choice: ToolChoice::Auto,
            max_tokens: agent.config.max_tokens_per_response,
            temperature: agent.config.temperature,
            seed: Some(self.start.seed.wrapping_add(u64::from(step))),
        };
        let mut attempt = 0;
        loop {
            agent
                .record_deferred(
                    self.run_id,
                    &TraceEvent::ModelRequest {
                        step,
                        messages: request.messages.len(),
                        tool_choice: request.tool_choice.clone(),
                    },
                )
                .await?;
            let started = Instant::now();
            let span = tracing::info_span!(
                "cellwright.model",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = %agent.model.id(),
                gen_ai.usage.input_tokens = tracing::field::Empty,
                gen_ai.usage.output_tokens = tracing::field::Empty,
            );
            let result = tokio::select! {
                r = self.ask_model(&request).instrument(span.clone()) => r,
                () = self.run_cancel.cancelled() => Err(ModelError::Cancelled),
            };
            match result {
                Ok(response) => {
                    span.record("gen_ai.usage.input_tokens", response.usage.input_tokens);
                    span.record("gen_ai.usage.output_tokens", response.usage.output_tokens);
                    agent
                        .record(
                            self.run_id,
                            &TraceEvent::ModelResponse {
                                step,
                                message: response.message.clone(),
                                usage: response.usage,
                                latency_ms: started.elapsed().as_millis() as u64,
                                model: response.model.clone(),
                                finish_reason: response.finish_reason,
                            },
                        )
                        .await?;
                    return Ok(Ok(response));
                }
                Err(ModelError::Cancelled) => {
                    return Ok(Err(self.interrupted(state).unwrap_or_else(|| End {
                        status: RunStatus::Cancelled,
                        answer: partial_answer(state, "the model call was cancelled"),
                        reason: Some("the model call was cancelled".into()),
                        budget: None,
                    })));
                }
                Err(error) => {
                    let will_retry = error.is_retryable() && attempt < agent.config.model_retries;
                    agent
                        .record(
                            self.run_id,
                            &TraceEvent::ModelFailed {
                                step,
                                error: error.to_string(),
                                will_retry,
                            },
                        )
                        .await?;
                    if !will_retry {
                        return Ok(Err(End {
                            status: RunStatus::Failed,
                            answer: partial_answer(state, &format!("the model failed: {error}")),
                            reason: Some(format!("model error: {error}")),
                            budget: None,
                        }));
                    }
                    attempt += 1;
                    let backoff = Duration::from_millis(200 * 2u64.pow(attempt));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.run_cancel.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Streams the model's answer, passing text deltas to the observer.
    async fn ask_model(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut stream = self.agent.model.chat_stream(request);
        while let Some(event) = stream.next().await {
            match event? {
                ChatEvent::Delta(text) => self.agent.observer.delta(&text),
                ChatEvent::Done(response) => return Ok(response),
            }
        }
        Err(ModelError::Truncated {
            message: "the model's stream ended without a final response".into(),
        })
    }

    /// Runs (or replays) the calls of one step and appends their results to the conversation.
    async fn run_tools(
        &self,
        state: &mut RunState,
        step: u32,
        calls: &[ToolCallRequest],
    ) -> Result<(), RuntimeError> {
        let agent = self.agent;
        let semaphore = Arc::new(tokio::sync::Semaphore::new(
            agent.config.max_concurrent_tools.max(1),
        ));
        let mut handles = Vec::with_capacity(calls.len());
        for (i, request) in calls.iter().enumerate() {
            let call = CallId(state.calls_made + i as u32 + 1);
            let job = CallJob {
                run_id: self.run_id.clone(),
                step,
                call,
                request: request.clone(),
                replayed: self.recorded.finished.get(&call).cloned(),
                attempt: self.recorded.started.get(&call).copied().unwrap_or(0) + 1,
                tools: Arc::clone(&agent.tools),
                store: Arc::clone(&agent.store),
                observer: Arc::clone(&agent.observer),
                ctx: ToolCtx {
                    run_id: self.run_id.clone(),
                    call_id: call,
                    cancel: self.run_cancel.child(),
                    progress: Arc::clone(&agent.progress),
                    artifacts: Arc::clone(&agent.store) as _,
                    seed: call_seed(self.start.seed, call),
                    clock: Arc::clone(&agent.clock),
                },
                timeout: agent.config.tool_timeout,
                max_inline_output: agent.config.max_inline_output,
            };
            let semaphore = Arc::clone(&semaphore);
            handles.push(tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                job.execute().await
            }));
        }
        let mut all_invalid = true;
        for (i, handle) in handles.into_iter().enumerate() {
            let request = &calls[i];
            let call = CallId(state.calls_made + i as u32 + 1);
            let outcome = match handle.await {
                Ok(result) => result?,
                Err(join) => {
                    ToolOutcome::Err(ToolError::failed(format!("the tool task died: {join}")))
                }
            };
            let invalid = matches!(&outcome, ToolOutcome::Err(ToolError::InvalidArgs { .. }))
                || matches!(&outcome, ToolOutcome::Err(ToolError::NotFound { what, .. }) if what == "tool");
            all_invalid &= invalid;
            state.messages.push(Message::tool(
                request.id.clone(),
                tool_message(call, &request.name, &outcome),
            ));
            state.results.push(CallRecord {
                call,
                tool: request.name.clone(),
                arguments: request.arguments.clone(),
                outcome,
            });
        }
        state.calls_made += calls.len() as u32;
        state.invalid_rounds = if all_invalid && !calls.is_empty() {
            state.invalid_rounds + 1
        } else {
            0
        };
        Ok(())
    }
}

/// One tool call, owned so it can run on its own task.
struct CallJob {
    run_id: RunId,
    step: u32,
    call: CallId,
    request: ToolCallRequest,
    replayed: Option<ToolOutcome>,
    attempt: u32,
    tools: Arc<ToolRegistry>,
    store: Arc<dyn TraceStore>,
    observer: Arc<dyn RunObserver>,
    ctx: ToolCtx,
    timeout: Duration,
    max_inline_output: usize,
}

impl CallJob {
    async fn execute(self) -> Result<ToolOutcome, StoreError> {
        if let Some(outcome) = self.replayed.clone() {
            return Ok(outcome);
        }
        let name = self.request.name.clone();
        let parsed = self.tools.parse_arguments(&name, &self.request.arguments);
        let arguments = parsed
            .clone()
            .unwrap_or_else(|_| Value::String(self.request.arguments.clone()));
        let effects = self.tools.effects(&name).unwrap_or(Effects::External);
        let started_event = TraceEvent::ToolCallStarted {
            step: self.step,
            call: self.call,
            tool: name.clone(),
            arguments,
            effects,
            attempt: self.attempt,
        };
        // An external action must be on disk before it happens, so a crash during it is
        // known on resume; a pure or idempotent call may simply run again.
        if effects == Effects::External {
            self.store.record(&self.run_id, &started_event).await?;
        } else {
            self.store
                .record_deferred(&self.run_id, &started_event)
                .await?;
        }
        self.observer.event(&self.run_id, &started_event);
        let span = tracing::info_span!(
            "cellwright.tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %name,
            gen_ai.tool.call.id = %self.call,
            attempt = self.attempt,
        );
        let started = Instant::now();
        let outcome = async {
            let args = match parsed {
                Ok(args) => args,
                Err(e) => return ToolOutcome::Err(e),
            };
            let timeout = self.timeout;
            let result = tokio::select! {
                r = tokio::time::timeout(timeout, self.tools.call(&self.ctx, &name, args)) => {
                    r.unwrap_or(Err(ToolError::Timeout { after_ms: timeout.as_millis() as u64 }))
                }
                () = self.ctx.cancel.cancelled() => Err(ToolError::Cancelled),
            };
            // Signal cooperative work (blocking threads) that outlived a timeout to stop.
            self.ctx.cancel.cancel();
            match result {
                Ok(output) => self.inline_or_artifact(output).await,
                Err(e) => ToolOutcome::Err(e),
            }
        }
        .instrument(span)
        .await;
        self.record(&TraceEvent::ToolCallFinished {
            step: self.step,
            call: self.call,
            tool: name,
            outcome: outcome.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            attempt: self.attempt,
        })
        .await?;
        Ok(outcome)
    }

    async fn record(&self, event: &TraceEvent) -> Result<(), StoreError> {
        self.store.record(&self.run_id, event).await?;
        self.observer.event(&self.run_id, event);
        Ok(())
    }

    /// Large outputs go to the artifact store; the model gets a reference and a preview.
    async fn inline_or_artifact(&self, output: Value) -> ToolOutcome {
        let text = output.to_string();
        if text.len() <= self.max_inline_output {
            return ToolOutcome::Ok(output);
        }
        let summary = format!(
            "full output of call {} ({}), {} bytes of JSON",
            self.call,
            self.request.name,
            text.len()
        );
        let preview: String = text.chars().take(self.max_inline_output / 2).collect();
        match self
            .ctx
            .artifacts
            .put(
                &self.run_id,
                Some(self.call),
                "application/json",
                &summary,
                text.into_bytes(),
            )
            .await
        {
            Ok(artifact) => {
                let event = TraceEvent::Artifact {
                    call: Some(self.call),
                    artifact: artifact.clone(),
                };
                if self
                    .store
                    .record_deferred(&self.run_id, &event)
                    .await
                    .is_ok()
                {
                    self.observer.event(&self.run_id, &event);
                }
                ToolOutcome::Ok(
                    json!({ "artifact": artifact, "preview": preview, "truncated": true }),
                )
            }
            Err(e) => ToolOutcome::Err(ToolError::failed(format!(
                "the output was too large to show and could not be stored: {e}"
            ))),
        }
    }
}

/// What the model reads for a call's result: the call number to cite, then output or error.
fn tool_message(call: CallId, tool: &str, outcome: &ToolOutcome) -> String {
    let body = match outcome {
        ToolOutcome::Ok(output) => json!({ "call": call.0, "tool": tool, "output": output }),
        ToolOutcome::Err(error) => {
            json!({ "call": call.0, "tool": tool, "error": error.for_model() })
        }
    };
    body.to_string()
}

/// The best answer a run that did not complete can give: what each successful call returned,
/// each statement citing its call.
fn partial_answer(state: &RunState, why: &str) -> Answer {
    let mut claims = Vec::new();
    let mut text = format!("No final answer: {why}.");
    let mut seen: HashMap<(String, String), ()> = HashMap::new();
    for record in &state.results {
        let ToolOutcome::Ok(output) = &record.outcome else {
            continue;
        };
        if seen
            .insert((record.tool.clone(), record.arguments.clone()), ())
            .is_some()
        {
            continue;
        }
        let mut shown = output.to_string();
        if shown.len() > 300 {
            shown = format!("{}…", shown.chars().take(300).collect::<String>());
        }
        let sentence = format!(
            "{} with {} returned {}",
            record.tool, record.arguments, shown
        );
        text.push_str(&format!("\n- {sentence} [{}]", record.call));
        claims.push(Claim {
            text: sentence,
            evidence: vec![Evidence {
                call: record.call,
                tool: record.tool.clone(),
            }],
            supported: true,
            note: None,
        });
    }
    Answer { text, claims }
}
