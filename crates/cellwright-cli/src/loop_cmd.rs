//! `cellwright loop`: a hypothesis loop with its experiment ledger in the store.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cellwright_core::CancelToken;
use cellwright_loop::{
    Chooser, LoopError, LoopReport, ModelChooser, Setup, Strategy, StrategyKind, Task,
};
use cellwright_store::SqliteStore;
use clap::Args;

use crate::ask::{cancel_on_signals, model_for, open_store};
use crate::{Globals, exit};

#[derive(Debug, Args)]
pub struct LoopArgs {
    /// The task file (docs/loop.md).
    #[arg(long, required_unless_present = "resume")]
    pub task: Option<PathBuf>,
    /// Continue loop RUN_ID from its ledger (its task is stored there).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Run these strategies instead of the task's (comma-separated: agent, random, greedy,
    /// knowledge_prior).
    #[arg(long, value_delimiter = ',')]
    pub strategy: Vec<String>,
    /// The agent's language model, as for `ask`; `none` takes the evidence ranking's top
    /// picks without a model.
    #[arg(long, env = "CELLWRIGHT_MODEL")]
    pub model: Option<String>,
    /// Write the report (hits per round per strategy, every pick with its hypothesis) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw hits against experiments run, per strategy, as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Wait this long after each experiment (to watch a loop, or stop it mid-way).
    #[arg(
        long,
        env = "CELLWRIGHT_LOOP_PACE_MS",
        default_value_t = 0,
        hide = true
    )]
    pub pace_ms: u64,
}

/// The task to run: a new one from its file, or a stored one to resume.
async fn task_of(args: &LoopArgs, store: &SqliteStore) -> anyhow::Result<(Task, String)> {
    let mut task = match (&args.task, &args.resume) {
        (Some(path), _) => Task::read(path)?,
        (None, Some(id)) => {
            let stored = store
                .ledger_task(id)
                .await?
                .with_context(|| format!("no loop {id} in {}", store.path().display()))?;
            serde_json::from_value(stored).with_context(|| format!("the stored task of {id}"))?
        }
        (None, None) => anyhow::bail!("give --task FILE or --resume RUN_ID"),
    };
    if !args.strategy.is_empty() {
        task.strategy = args
            .strategy
            .iter()
            .map(|s| {
                StrategyKind::parse(s).with_context(|| {
                    format!("unknown strategy {s}; the strategies are agent, random, greedy, knowledge_prior")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let id = args
        .resume
        .clone()
        .unwrap_or_else(|| format!("loop-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    Ok((task, id))
}

/// The strategies of `task`; the agent's chooser is the model `spec` (`none`: no model).
pub async fn strategies(
    task: &Task,
    spec: &str,
    store: &SqliteStore,
    cancel: &CancelToken,
) -> anyhow::Result<Vec<Box<dyn Strategy>>> {
    let mut out = Vec::new();
    for &kind in &task.strategy {
        let chooser: Option<Box<dyn Chooser>> = match (kind, spec) {
            (StrategyKind::Agent, s) if s != "none" => Some(Box::new(ModelChooser {
                model: model_for(s, store, cancel).await?,
                seed: task.seed,
            })),
            _ => None,
        };
        out.push(cellwright_loop::strategy(kind, chooser));
    }
    Ok(out)
}

pub async fn run(globals: &Globals, args: LoopArgs) -> anyhow::Result<u8> {
    let store = open_store(globals).await?;
    let (task, loop_id) = task_of(&args, &store).await?;
    let cancel = cancel_on_signals();
    let mut setup = tokio::task::block_in_place(|| {
        crate::progress::with_spinner(|p| Setup::prepare(task, loop_id.clone(), p, &cancel))
    })?;
    setup.pace = Duration::from_millis(args.pace_ms);
    let spec = args
        .model
        .clone()
        .unwrap_or_else(crate::ask::default_model_spec);
    let strategies = strategies(&setup.task, &spec, &store, &cancel).await?;
    eprintln!(
        "loop {loop_id}: {} · {} candidates · {} rounds × {} · {}",
        setup.backend.describe(),
        setup.candidates.len(),
        setup.task.rounds,
        setup.task.batch,
        setup
            .task
            .strategy
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!("(resume after an interruption with `cellwright loop --resume {loop_id}`)");
    let bar = crate::progress::CountBar::new();
    let outcome = cellwright_loop::run(&store, &setup, &strategies, &bar, &cancel).await;
    bar.0.finish_and_clear();
    match outcome {
        Err(LoopError::Cancelled) => {
            eprintln!(
                "cancelled; the ledger keeps every result: `cellwright loop --resume {loop_id}`"
            );
            return Ok(exit::CANCELLED);
        }
        other => other?,
    }
    let truth = tokio::task::block_in_place(|| cellwright_loop::truth(&setup, &cancel))?;
    let report = cellwright_loop::report(&store, &setup, truth).await?;
    print!("{}", render(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        cellwright_loop::plot(&report, path)?;
    }
    Ok(0)
}

/// Hits per round per strategy, then each strategy's picks with their hypotheses.
pub fn render(report: &LoopReport) -> String {
    let mut out = format!(
        "{} — {}\ntrue top {} of {} candidates found, by round:\n",
        report.task.name, report.backend, report.task.top_k, report.candidates
    );
    let rounds = report.random_expected.len();
    out.push_str(&format!("  {:<16}", "strategy"));
    for r in 1..=rounds {
        out.push_str(&format!("{r:>6}"));
    }
    out.push('\n');
    for s in &report.strategies {
        out.push_str(&format!("  {:<16}", s.strategy));
        for h in &s.hits {
            out.push_str(&format!("{h:>6}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("  {:<16}", "random (mean)"));
    for h in &report.random_expected {
        out.push_str(&format!("{h:>6.1}"));
    }
    out.push('\n');
    for s in &report.strategies {
        out.push_str(&format!(
            "\n{} picks (* = a true top-{} gene):\n",
            s.strategy, report.task.top_k
        ));
        for p in &s.picks {
            let result = p.result.map_or("not run".to_owned(), |v| format!("{v:.3}"));
            let mark = if p.hit { "*" } else { " " };
            out.push_str(&format!(
                "  {mark} r{} {:<10} {result:>8}  {}\n",
                p.round + 1,
                p.gene,
                p.hypothesis
            ));
        }
    }
    out
}
