//! `cellwright eval`: the agent on a question set, each answer checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{
    ChatModel, RunId, RunStatus, StoredEvent, ToolOutcome, TraceEvent, TraceStore,
};
use cellwright_eval::questions::{Question, read_questions};
use cellwright_llm::ScriptedModel;
use clap::Args;
use serde::Serialize;

use crate::ask::{RunArgs, build_agent, cancel_on_signals, model_for, open_store};
use crate::{Globals, exit};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The question set: one `{"id", "question", "check"}` object per line.
    pub questions: PathBuf,
    /// As for `ask`; `replay:<folder>` answers each question with the model responses
    /// recorded in `<folder>/<id>.jsonl` by `--record`.
    #[command(flatten)]
    pub run: RunArgs,
    /// Write `{"score", "items": [...]}` here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write each question's trace to `<folder>/<id>.jsonl` (the `trace export` format), to
    /// replay it later with `--model replay:<folder>`.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Only the questions whose id contains this.
    #[arg(long)]
    pub only: Option<String>,
}

/// One question's result.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub id: String,
    pub pass: bool,
    pub answer: String,
    /// Tools that returned a result, in call order, each once.
    pub tools: Vec<String>,
    pub steps: u32,
    pub seconds: f64,
    /// The first check the answer failed, in words.
    pub failed_check: Option<String>,
    pub status: RunStatus,
    pub run_id: String,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    /// Share of the questions passed.
    score: f64,
    passed: usize,
    total: usize,
    model: &'a str,
    questions: String,
    items: &'a [ItemResult],
}

/// Where each question's model comes from.
enum Models {
    Shared(Arc<dyn ChatModel>),
    /// `<folder>/<id>.jsonl`, recorded by `--record`.
    Recorded(PathBuf),
}

/// Reads a run's trace as `trace export` wrote it.
fn read_events(path: &Path) -> anyhow::Result<Vec<StoredEvent>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a trace event", path.display(), i + 1))
        })
        .collect()
}

/// Writes a run's trace, one event per line (the format of `trace export`).
pub fn write_events(sink: &mut dyn Write, events: &[StoredEvent]) -> anyhow::Result<()> {
    for e in events {
        serde_json::to_writer(&mut *sink, e)?;
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    Ok(())
}

/// Tools that returned a result, in call order, each once.
fn tools_used(events: &[StoredEvent]) -> Vec<String> {
    let mut tools: Vec<String> = Vec::new();
    for e in events {
        if let TraceEvent::ToolCallFinished {
            tool,
            outcome: ToolOutcome::Ok(_),
            ..
        } = &e.event
            && !tools.contains(tool)
        {
            tools.push(tool.clone());
        }
    }
    tools
}

pub async fn run(globals: &Globals, args: EvalArgs) -> anyhow::Result<u8> {
    let mut questions = read_questions(&args.questions)?;
    if let Some(only) = &args.only {
        questions.retain(|q| q.id.contains(only.as_str()));
        anyhow::ensure!(!questions.is_empty(), "no question id contains `{only}`");
    }
    let spec = args.run.model_spec();
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = open_store(globals).await?;
    let cancel = cancel_on_signals();
    // One model for every question (loaded once), unless each has its own recording.
    let models = match spec.strip_prefix("replay:").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Models::Recorded(dir),
        _ => Models::Shared(model_for(&spec, &store, &cancel).await?),
    };
    let eval_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let bar = indicatif::ProgressBar::new(questions.len() as u64);
    let mut items = Vec::new();
    for q in &questions {
        if cancel.is_cancelled() {
            break;
        }
        bar.set_message(q.id.clone());
        let model: Arc<dyn ChatModel> = match &models {
            Models::Shared(model) => Arc::clone(model),
            Models::Recorded(dir) => {
                let path = dir.join(format!("{}.jsonl", q.id));
                Arc::new(ScriptedModel::replay(
                    &path.display().to_string(),
                    &read_events(&path)?,
                ))
            }
        };
        let item = ask_one(globals, &store, model, &args, q, &eval_id, &cancel).await?;
        bar.suspend(|| print_item(&item));
        bar.inc(1);
        items.push(item);
    }
    bar.finish_and_clear();
    let passed = items.iter().filter(|i| i.pass).count();
    let score = passed as f64 / questions.len() as f64;
    println!(
        "score: {passed}/{} ({:.1} %) with {spec}{}",
        questions.len(),
        100.0 * score,
        if items.len() < questions.len() {
            format!(" ({} not asked: cancelled)", questions.len() - items.len())
        } else {
            String::new()
        }
    );
    if let Some(path) = &args.json {
        let report = Report {
            score,
            passed,
            total: questions.len(),
            model: &spec,
            questions: args.questions.display().to_string(),
            items: &items,
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(if cancel.is_cancelled() {
        exit::CANCELLED
    } else {
        0
    })
}

async fn ask_one(
    globals: &Globals,
    store: &Arc<cellwright_store::SqliteStore>,
    model: Arc<dyn ChatModel>,
    args: &EvalArgs,
    q: &Question,
    eval_id: &str,
    cancel: &cellwright_core::CancelToken,
) -> anyhow::Result<ItemResult> {
    let run_id = RunId::new(format!("eval-{eval_id}-{}", q.id));
    let (agent, display) = build_agent(globals, model, store, args.run.config(), true)?;
    let started = Instant::now();
    let outcome = agent.run(run_id.clone(), &q.question, cancel.clone()).await;
    display.finish();
    let outcome = outcome?;
    let seconds = started.elapsed().as_secs_f64();
    let events = store.events(&run_id).await?;
    if let Some(dir) = &args.record {
        let path = dir.join(format!("{}.jsonl", q.id));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        write_events(&mut file, &events)?;
    }
    let verdict = q.check.judge(&outcome.answer.text);
    Ok(ItemResult {
        id: q.id.clone(),
        pass: verdict.is_ok(),
        answer: outcome.answer.text,
        tools: tools_used(&events),
        steps: outcome.steps,
        seconds,
        failed_check: verdict.err().map(|f| f.to_string()),
        status: outcome.status,
        run_id: run_id.to_string(),
    })
}

fn print_item(item: &ItemResult) {
    let tools = if item.tools.is_empty() {
        "no tools".to_owned()
    } else {
        item.tools.join(", ")
    };
    println!(
        "{} {} · {} steps · {tools} · {:.1} s",
        if item.pass { "PASS" } else { "FAIL" },
        item.id,
        item.steps,
        item.seconds
    );
    if let Some(failed) = &item.failed_check {
        println!("     {failed}");
        let answer: String = item.answer.replace('\n', " ").chars().take(160).collect();
        println!("     answer: {answer}");
    }
}
