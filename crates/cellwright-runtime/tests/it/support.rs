//! Test tools, stores and helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cellwright_core::{
    ArtifactId, ArtifactRef, ArtifactStore, CallId, CancelToken, Effects, RunId, RunSummary,
    StoreError, StoredEvent, Tool, ToolCtx, ToolError, ToolRegistry, TraceEvent, TraceSink,
    TraceStore,
};
use cellwright_llm::{ScriptedModel, ScriptedResponse, ScriptedToolCall};
use cellwright_runtime::{Agent, AgentConfig, RunOutcome};
use cellwright_store::SqliteStore;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SleepArgs {
    #[schemars(range(min = 0))]
    pub ms: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Slept {
    pub ms: u64,
}

/// Sleeps, honouring cancellation.
pub struct SleepTool;

impl Tool for SleepTool {
    const NAME: &'static str = "sleep_ms";
    type Args = SleepArgs;
    type Output = Slept;

    fn description(&self) -> String {
        "Waits the given number of milliseconds.".into()
    }

    async fn call(&self, ctx: &ToolCtx, args: SleepArgs) -> Result<Slept, ToolError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(Slept { ms: args.ms }),
            () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Empty {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Met {
    pub met: usize,
}

/// Waits until `n` calls are inside it at once: completes only if calls run concurrently.
pub struct MeetTool {
    pub barrier: Arc<tokio::sync::Barrier>,
}

impl Tool for MeetTool {
    const NAME: &'static str = "meet_others";
    type Args = Empty;
    type Output = Met;

    fn description(&self) -> String {
        "Returns once all parallel callers have arrived.".into()
    }

    async fn call(&self, _ctx: &ToolCtx, _args: Empty) -> Result<Met, ToolError> {
        self.barrier.wait().await;
        Ok(Met { met: 1 })
    }
}

/// Fails, or panics, on request.
pub struct FailTool;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FailArgs {
    pub panic: bool,
}

impl Tool for FailTool {
    const NAME: &'static str = "fail_now";
    type Args = FailArgs;
    type Output = Met;

    fn description(&self) -> String {
        "Always fails.".into()
    }

    async fn call(&self, _ctx: &ToolCtx, args: FailArgs) -> Result<Met, ToolError> {
        if args.panic {
            panic!("tool bug on purpose");
        }
        Err(ToolError::retryable("the instrument is busy"))
    }
}

/// An external action that counts how often it really ran.
pub struct CountTool {
    pub runs: Arc<AtomicUsize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CountArgs {
    pub label: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Counted {
    pub label: String,
    pub total: usize,
}

impl Tool for CountTool {
    const NAME: &'static str = "order_experiment";
    type Args = CountArgs;
    type Output = Counted;

    fn description(&self) -> String {
        "Orders an experiment (an external action).".into()
    }

    fn effects(&self) -> Effects {
        Effects::External
    }

    async fn call(&self, _ctx: &ToolCtx, args: CountArgs) -> Result<Counted, ToolError> {
        let total = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Counted {
            label: args.label,
            total,
        })
    }
}

/// Returns a large output, to be stored as an artifact.
pub struct BigTool;

impl Tool for BigTool {
    const NAME: &'static str = "make_matrix";
    type Args = Empty;
    type Output = Vec<Vec<f32>>;

    fn description(&self) -> String {
        "Makes a big matrix.".into()
    }

    async fn call(&self, _ctx: &ToolCtx, _args: Empty) -> Result<Vec<Vec<f32>>, ToolError> {
        Ok(vec![vec![0.5; 100]; 100])
    }
}

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub runs: Arc<AtomicUsize>,
    pub tools: Arc<ToolRegistry>,
}

pub async fn fixture(parallel: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("runs.db")).await.unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tools = ToolRegistry::new();
    tools
        .register(SleepTool)
        .unwrap()
        .register(MeetTool {
            barrier: Arc::new(tokio::sync::Barrier::new(parallel)),
        })
        .unwrap()
        .register(FailTool)
        .unwrap()
        .register(CountTool {
            runs: Arc::clone(&runs),
        })
        .unwrap()
        .register(BigTool)
        .unwrap()
        .register(Translate)
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        runs,
        tools: Arc::new(tools),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslateArgs {
    pub sequence: String,
    #[schemars(range(min = 1, max = 3))]
    pub frame: u8,
}

/// A pure tool with a constrained schema (frame 1..=3).
pub struct Translate;

impl Tool for Translate {
    const NAME: &'static str = "translate_dna";
    type Args = TranslateArgs;
    type Output = Value;

    fn description(&self) -> String {
        "Translates DNA.".into()
    }

    async fn call(&self, _ctx: &ToolCtx, args: TranslateArgs) -> Result<Value, ToolError> {
        let start = usize::from(args.frame - 1);
        Ok(json!({ "codons": args.sequence.len().saturating_sub(start) / 3 }))
    }
}

pub fn call(name: &str, arguments: Value) -> ScriptedToolCall {
    ScriptedToolCall {
        name: name.into(),
        arguments,
    }
}

pub fn tools_turn(calls: Vec<ScriptedToolCall>) -> ScriptedResponse {
    ScriptedResponse {
        tool_calls: calls,
        ..Default::default()
    }
}

pub fn text_turn(text: &str) -> ScriptedResponse {
    ScriptedResponse {
        content: text.into(),
        ..Default::default()
    }
}

pub fn agent(f: &Fixture, script: Vec<ScriptedResponse>, config: AgentConfig) -> Agent {
    Agent::new(
        Arc::new(ScriptedModel::new("script:test", script)),
        Arc::clone(&f.tools),
        Arc::clone(&f.store) as Arc<dyn TraceStore>,
        config,
    )
}

pub async fn run(agent: &Agent, id: &str, question: &str) -> RunOutcome {
    agent
        .run(RunId::new(id), question, CancelToken::new())
        .await
        .unwrap()
}

pub async fn events(store: &SqliteStore, id: &str) -> Vec<TraceEvent> {
    store
        .events(&RunId::new(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

pub fn finished_outcomes(events: &[TraceEvent]) -> Vec<(CallId, String, Result<Value, String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::ToolCallFinished {
                call,
                tool,
                outcome,
                ..
            } => Some((
                *call,
                tool.clone(),
                match outcome {
                    cellwright_core::ToolOutcome::Ok(v) => Ok(v.clone()),
                    cellwright_core::ToolOutcome::Err(e) => Err(e.kind().to_owned()),
                },
            )),
            _ => None,
        })
        .collect()
}

/// A store that stops accepting writes after `limit` events, like a process killed at
/// that point: nothing after it reaches the disk.
pub struct CrashingStore {
    pub inner: Arc<SqliteStore>,
    pub limit: usize,
    pub written: AtomicUsize,
}

impl TraceSink for CrashingStore {
    fn record<'a>(
        &'a self,
        run: &'a RunId,
        event: &'a TraceEvent,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if self.written.fetch_add(1, Ordering::SeqCst) >= self.limit {
                return Err(StoreError::Database("simulated crash".into()));
            }
            self.inner.record(run, event).await
        })
    }
}

impl ArtifactStore for CrashingStore {
    fn put<'a>(
        &'a self,
        run: &'a RunId,
        call: Option<CallId>,
        media_type: &'a str,
        summary: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<ArtifactRef, StoreError>> {
        self.inner.put(run, call, media_type, summary, data)
    }

    fn get<'a>(&'a self, id: &'a ArtifactId) -> BoxFuture<'a, Result<Vec<u8>, StoreError>> {
        self.inner.get(id)
    }
}

impl TraceStore for CrashingStore {
    fn events<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>> {
        self.inner.events(run)
    }

    fn runs(&self, limit: u32) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        self.inner.runs(limit)
    }
}
