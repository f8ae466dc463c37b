//! `cellwright bench runtime`: the cost of the agent loop itself.
//!
//! - Per-step overhead: a zero-latency model that always calls a no-op tool, a growing
//!   message history, every event committed to SQLite (WAL, `synchronous=NORMAL`).
//! - The same two-node loop in LangGraph with its SQLite checkpointer, at equal durability
//!   (every superstep committed, same PRAGMAs), in a virtualenv this bench creates. Both of
//!   LangGraph's state layouts are measured: stock `MessagesState` (the whole history in every
//!   checkpoint) and the delta channel (new messages plus periodic snapshots), which is its
//!   best case and the one the headline ratio uses.
//! - Storage per step, and how it grows with the number of steps.
//! - Tool calls per second with concurrent calls, and trace events per second into SQLite.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use cellwright_core::{
    Budgets, CallId, CancelToken, ChatRequest, ChatResponse, Effects, FinishReason, Message, Role,
    RunId, Tool, ToolCallRequest, ToolCtx, ToolError, ToolOutcome, ToolRegistry, TraceEvent,
    TraceSink, TraceStore, Usage,
};
use cellwright_llm::ScriptedModel;
use cellwright_runtime::{Agent, AgentConfig};
use cellwright_store::SqliteStore;
use indicatif::ProgressBar;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::BenchArgs;
use super::median;

const LANGGRAPH_SCRIPT: &str = include_str!("../../../../bench/langgraph_runtime.py");
const LANGGRAPH_REQUIREMENTS: &str = include_str!("../../../../bench/requirements-langgraph.txt");

struct Plan {
    steps: usize,
    repeats: usize,
    growth: Vec<usize>,
    calls_per_step: usize,
    throughput_steps: usize,
    events: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                steps: 200,
                repeats: 3,
                growth: vec![100, 200, 400],
                calls_per_step: 8,
                throughput_steps: 50,
                events: 20_000,
            }
        } else {
            Self {
                steps: 500,
                repeats: 5,
                growth: vec![100, 500, 1500],
                calls_per_step: 8,
                throughput_steps: 250,
                events: 100_000,
            }
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let plan = Plan::new(args.quick);
    let work = tempfile::tempdir().context("cannot create a scratch folder")?;
    let bar = crate::progress::spinner();

    bar.set_message(format!(
        "ours: {} steps × {} repeats",
        plan.steps, plan.repeats
    ));
    let mut per_step = Vec::new();
    let mut bytes_per_step = 0.0;
    for r in 0..plan.repeats {
        let (secs, bytes) = loop_run(work.path(), &format!("loop{r}"), plan.steps).await?;
        per_step.push(secs * 1000.0 / plan.steps as f64);
        bytes_per_step = bytes as f64 / plan.steps as f64;
    }
    let ours_ms = median(&per_step);

    let mut growth = Vec::new();
    for &n in &plan.growth {
        bar.set_message(format!("ours: storage after {n} steps"));
        let (_, bytes) = loop_run(work.path(), &format!("growth{n}"), n).await?;
        growth.push(
            json!({"steps": n, "db_bytes": bytes, "bytes_per_step": bytes as f64 / n as f64}),
        );
    }

    bar.set_message("ours: concurrent tool calls");
    let calls_per_s =
        tool_throughput(work.path(), plan.throughput_steps, plan.calls_per_step).await?;

    bar.set_message(format!("ours: {} trace events", plan.events));
    let (events_per_s, per_commit_1) = trace_throughput(work.path(), plan.events, 1).await?;
    let (events_per_s_4, per_commit_4) = trace_throughput(work.path(), plan.events, 4).await?;

    let mut langgraph = json!(null);
    let mut ratios = serde_json::Map::new();
    // Headline: several writers (runs, or a run's concurrent tool calls) into one store, every
    // event durable before `record` returns; the one-writer figure stands beside it.
    ratios.insert("trace_events_per_s".into(), json!(events_per_s_4));
    ratios.insert("trace_events_per_s_1_writer".into(), json!(events_per_s));
    if args.no_peer {
        bar.println("peer skipped (--no-peer)");
    } else {
        match langgraph_runs(&plan, &bar, work.path()) {
            Ok(lg) => {
                let ms = |v: &str| lg[v]["per_step_ms_median"].as_f64();
                let bps = |v: &str| lg[v]["bytes_per_step"].as_f64();
                if let Some(x) = ms("delta") {
                    ratios.insert(
                        "step_overhead_langgraph_over_ours".into(),
                        json!(x / ours_ms),
                    );
                }
                if let Some(x) = ms("messages_state") {
                    ratios.insert(
                        "step_overhead_langgraph_messages_state_over_ours".into(),
                        json!(x / ours_ms),
                    );
                }
                if let Some(x) = bps("delta") {
                    ratios.insert(
                        "store_bytes_langgraph_over_ours".into(),
                        json!(x / bytes_per_step),
                    );
                }
                if let Some(x) = bps("messages_state") {
                    ratios.insert(
                        "store_bytes_langgraph_messages_state_over_ours".into(),
                        json!(x / bytes_per_step),
                    );
                }
                langgraph = lg;
            }
            Err(e) => bar.println(format!(
                "LangGraph peer failed, ratios against it are missing: {e:#}"
            )),
        }
    }
    bar.finish_and_clear();

    let report = json!({
        "bench": "runtime",
        "quick": args.quick,
        "repeats": plan.repeats,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "ours": {
            "steps": plan.steps,
            "per_step_ms_median": ours_ms,
            "per_step_ms_all": per_step,
            "bytes_per_step": bytes_per_step,
            "growth": growth,
            "tool_calls_per_s": calls_per_s,
            "calls_per_step": plan.calls_per_step,
            "trace_events_per_s": events_per_s,
            "trace_events_per_s_4_writers": events_per_s_4,
            "trace_events_per_commit": per_commit_1,
            "trace_events_per_commit_4_writers": per_commit_4,
        },
        "langgraph": langgraph,
        "ratios": ratios,
    });
    print_table(&report);
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NoopArgs {
    #[allow(dead_code)] // reason: parsed to exercise validation, not used
    i: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct NoopOutput {
    ok: bool,
}

/// Does nothing, as LangGraph's tool node in the peer script.
struct Noop;

impl Tool for Noop {
    const NAME: &'static str = "noop_tool";
    type Args = NoopArgs;
    type Output = NoopOutput;

    fn description(&self) -> String {
        "Does nothing.".into()
    }

    fn effects(&self) -> Effects {
        Effects::Pure
    }

    async fn call(&self, _ctx: &ToolCtx, _args: NoopArgs) -> Result<NoopOutput, ToolError> {
        Ok(NoopOutput { ok: true })
    }
}

/// A zero-latency model: `calls` no-op tool calls per turn for `steps` turns, then "done".
fn loop_model(steps: usize, calls: usize) -> ScriptedModel {
    ScriptedModel::from_fn("bench:loop", move |req: &ChatRequest| {
        // The turn number, from the history length: each turn adds 1 + `calls` messages.
        let turn = (req.messages.len() - 2) / (1 + calls);
        let tool_calls = if turn < steps {
            (0..calls)
                .map(|c| ToolCallRequest {
                    id: format!("call_{turn}_{c}"),
                    name: "noop_tool".into(),
                    arguments: format!("{{\"i\":{turn}}}"),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(ChatResponse {
            finish_reason: if tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            },
            message: Message {
                role: Role::Assistant,
                content: if tool_calls.is_empty() {
                    "done".into()
                } else {
                    String::new()
                },
                tool_calls,
                tool_call_id: None,
            },
            usage: Usage::default(),
            model: "bench".into(),
        })
    })
}

fn bench_agent(store: Arc<SqliteStore>, steps: usize, calls: usize) -> anyhow::Result<Agent> {
    let mut tools = ToolRegistry::new();
    tools.register(Noop)?;
    let config = AgentConfig {
        budgets: Budgets {
            max_steps: steps as u32 + 1,
            max_tool_calls: (steps * calls) as u32,
            max_tokens: u64::MAX,
            max_wall_ms: 3_600_000,
        },
        max_concurrent_tools: calls.max(1),
        ..AgentConfig::default()
    };
    Ok(Agent::new(
        Arc::new(loop_model(steps, calls)),
        Arc::new(tools),
        store as Arc<dyn TraceStore>,
        config,
    ))
}

/// One loop of `steps` steps into a fresh database: (seconds, bytes on disk afterwards).
async fn loop_run(dir: &Path, name: &str, steps: usize) -> anyhow::Result<(f64, u64)> {
    let path = dir.join(format!("{name}.db"));
    let store = Arc::new(SqliteStore::open(&path).await?);
    let agent = bench_agent(Arc::clone(&store), steps, 1)?;
    let started = Instant::now();
    let outcome = agent
        .run(RunId::new(name), "bench", CancelToken::new())
        .await?;
    let secs = started.elapsed().as_secs_f64();
    if outcome.tool_calls as usize != steps {
        bail!(
            "the bench loop made {} tool calls, expected {steps}",
            outcome.tool_calls
        );
    }
    store.checkpoint().await?;
    let bytes = store.disk_bytes();
    store.close().await;
    Ok((secs, bytes))
}

async fn tool_throughput(dir: &Path, steps: usize, calls: usize) -> anyhow::Result<f64> {
    let store = Arc::new(SqliteStore::open(dir.join("throughput.db")).await?);
    let agent = bench_agent(Arc::clone(&store), steps, calls)?;
    let started = Instant::now();
    let outcome = agent
        .run(RunId::new("throughput"), "bench", CancelToken::new())
        .await?;
    let secs = started.elapsed().as_secs_f64();
    store.close().await;
    Ok(f64::from(outcome.tool_calls) / secs)
}

/// Events per second, each committed on its own, from `writers` concurrent writers.
/// Events per second with every event durable before `record` returns, from `writers`
/// concurrent tasks; and the mean number of events each commit carried.
async fn trace_throughput(dir: &Path, events: usize, writers: usize) -> anyhow::Result<(f64, f64)> {
    let store = Arc::new(SqliteStore::open(dir.join(format!("events{writers}.db"))).await?);
    let run = RunId::new("events");
    store
        .record(
            &run,
            &TraceEvent::RunStarted {
                question: "bench".into(),
                model: "bench".into(),
                system_prompt: String::new(),
                tools: vec![],
                budgets: Budgets::default(),
                seed: 0,
            },
        )
        .await?;
    let event = TraceEvent::ToolCallFinished {
        step: 1,
        call: CallId(1),
        tool: "noop_tool".into(),
        outcome: ToolOutcome::Ok(json!({"ok": true})),
        duration_ms: 0,
        attempt: 1,
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = Arc::clone(&store);
        let run = run.clone();
        let event = event.clone();
        let n = events / writers;
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                store.record(&run, &event).await?;
            }
            Ok::<_, cellwright_core::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = store.write_stats().await;
    store.close().await;
    let per_commit = stats.events as f64 / stats.commits.max(1) as f64;
    Ok(((events / writers * writers) as f64 / secs, per_commit))
}

/// Creates (once) the peer's virtualenv under the cache and runs the LangGraph script.
fn langgraph_runs(plan: &Plan, bar: &ProgressBar, work: &Path) -> anyhow::Result<Value> {
    let python = super::peer_python("langgraph", LANGGRAPH_REQUIREMENTS, bar)?;
    let script = work.join("langgraph_runtime.py");
    std::fs::write(&script, LANGGRAPH_SCRIPT)?;
    let db = work.join("langgraph.db");
    let mut out = serde_json::Map::new();
    for (key, state) in [("delta", "delta"), ("messages_state", "messages")] {
        bar.set_message(format!(
            "peer: LangGraph ({state} state), {} steps × {}",
            plan.steps, plan.repeats
        ));
        let mut result = super::python_json(
            Command::new(&python)
                .arg(&script)
                .args([
                    "--steps",
                    &plan.steps.to_string(),
                    "--repeats",
                    &plan.repeats.to_string(),
                    "--state",
                    state,
                    "--db",
                ])
                .arg(&db),
        )?;
        bar.set_message(format!("peer: LangGraph ({state} state) storage growth"));
        let growth = super::python_json(
            Command::new(&python)
                .arg(&script)
                .args([
                    "--growth",
                    &plan
                        .growth
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    "--state",
                    state,
                    "--db",
                ])
                .arg(&db),
        )?;
        result["growth"] = growth["growth"].clone();
        out.insert(key.into(), result);
    }
    let _ = std::fs::remove_file(&db);
    Ok(Value::Object(out))
}

fn print_table(report: &Value) {
    let ours = &report["ours"];
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
    };
    println!(
        "\nagent runtime, {} steps, median of {} runs",
        ours["steps"], report["repeats"]
    );
    println!("{:<34} {:>14} {:>14}", "", "ms per step", "bytes per step");
    println!(
        "{:<34} {:>14} {:>14.0}",
        "cellwright (SQLite, WAL)",
        f(&ours["per_step_ms_median"]),
        ours["bytes_per_step"].as_f64().unwrap_or(f64::NAN)
    );
    for (key, name) in [
        ("delta", "LangGraph, delta channel"),
        ("messages_state", "LangGraph, MessagesState"),
    ] {
        let lg = &report["langgraph"][key];
        if lg.is_object() {
            println!(
                "{:<34} {:>14} {:>14.0}",
                name,
                f(&lg["per_step_ms_median"]),
                lg["bytes_per_step"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    println!("\nstorage growth (bytes on disk after N steps)");
    for (i, g) in ours["growth"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let peer = |k: &str| {
            report["langgraph"][k]["growth"][i]["db_bytes_after_checkpoint"]
                .as_u64()
                .map_or("-".to_owned(), |b| b.to_string())
        };
        println!(
            "  {:>6} steps: ours {:>12}  LangGraph delta {:>12}  MessagesState {:>12}",
            g["steps"],
            g["db_bytes"],
            peer("delta"),
            peer("messages_state")
        );
    }
    println!(
        "\ntool calls per second ({} concurrent calls per step): {:.0}",
        ours["calls_per_step"],
        ours["tool_calls_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "trace events per second into SQLite, each durable: {:.0} (1 writer, {:.1} per commit), {:.0} (4 writers, {:.1} per commit)",
        ours["trace_events_per_s"].as_f64().unwrap_or(0.0),
        ours["trace_events_per_commit"].as_f64().unwrap_or(0.0),
        ours["trace_events_per_s_4_writers"].as_f64().unwrap_or(0.0),
        ours["trace_events_per_commit_4_writers"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!("\nratios");
    if let Some(ratios) = report["ratios"].as_object() {
        for (k, v) in ratios {
            println!("  {k:<50} {}", f(v));
        }
    }
}
