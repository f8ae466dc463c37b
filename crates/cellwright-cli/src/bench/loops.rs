//! `cellwright bench loop`: the agent against random, greedy and the static knowledge prior
//! on simulator and DepMap tasks (examples/loops), several seeds each.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cellwright_core::CancelToken;
use cellwright_loop::{BackendSpec, Direction, LoopReport, Setup, Task};
use clap::Args;
use serde_json::{Value, json};

/// The benchmark's tasks: the example task files, so users run the same ones.
const TASKS: [(&str, &str); 6] = [
    (
        "liver_harmful",
        include_str!("../../../../examples/loops/liver_harmful.json"),
    ),
    (
        "melanoma12_harmful",
        include_str!("../../../../examples/loops/melanoma12_harmful.json"),
    ),
    (
        "neuroblastoma_growth",
        include_str!("../../../../examples/loops/neuroblastoma_growth.json"),
    ),
    (
        "mapk_apoptosis",
        include_str!("../../../../examples/loops/mapk_apoptosis.json"),
    ),
    (
        "tlgl_apoptosis",
        include_str!("../../../../examples/loops/tlgl_apoptosis.json"),
    ),
    (
        "thdiff_tbet",
        include_str!("../../../../examples/loops/thdiff_tbet.json"),
    ),
];

#[derive(Debug, Args)]
pub struct LoopBenchArgs {
    /// One seed per task instead of `--seeds`.
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON (top-level "ratios" object) to this file; plots go
    /// beside it (FILE.plots/).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The agent's language model, as for `ask` (default: the embedded model); `none` for
    /// its evidence ranking alone.
    #[arg(long, env = "CELLWRIGHT_MODEL")]
    pub model: Option<String>,
    /// Seeds per task: each draws the simulator's rates and the strategies' tie-breaks anew.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
}

/// Final hits of each strategy on one task and seed.
struct Outcome {
    task: &'static str,
    family: &'static str,
    harmful: bool,
    seed: u64,
    hits: BTreeMap<String, usize>,
    top_k: u32,
    picks: usize,
}

pub async fn run(args: LoopBenchArgs) -> anyhow::Result<u8> {
    let seeds = if args.quick { 1 } else { args.seeds.max(1) };
    let dir = tempfile::tempdir()?;
    let store = cellwright_store::SqliteStore::open(dir.path().join("bench.db")).await?;
    let cancel = crate::ask::cancel_on_signals();
    let spec = args
        .model
        .clone()
        .unwrap_or_else(crate::ask::default_model_spec);
    let plots = args.json.as_ref().map(|p| p.with_extension("plots"));
    if let Some(p) = &plots {
        std::fs::create_dir_all(p)?;
    }
    let bar = crate::progress::CountBar::new();
    bar.0.set_length(TASKS.len() as u64 * seeds);
    let mut outcomes = Vec::new();
    let started = std::time::Instant::now();
    for (name, text) in TASKS {
        let base = Task::parse(text, name)?;
        for seed in 0..seeds {
            bar.0.set_message(format!("{name}, seed {seed}"));
            let task = Task {
                seed,
                ..base.clone()
            };
            let (report, hindsight) = one(&store, &task, name, &spec, &cancel).await?;
            if let (Some(p), 0) = (&plots, seed) {
                cellwright_loop::plot(&report, &p.join(format!("{name}.svg")))?;
            }
            outcomes.push(Outcome {
                task: name,
                family: match task.backend {
                    BackendSpec::Depmap { .. } => "depmap",
                    BackendSpec::Simulator { .. } => "simulator",
                },
                harmful: matches!(task.backend, BackendSpec::Depmap { .. })
                    && task.direction == Direction::Min,
                seed,
                hits: report
                    .strategies
                    .iter()
                    .map(|s| (s.strategy.clone(), s.final_hits()))
                    .chain([(HINDSIGHT.to_owned(), hindsight)])
                    .collect(),
                top_k: task.top_k,
                picks: task.budget(),
            });
            bar.0.inc(1);
        }
    }
    bar.0.finish_and_clear();
    let report = summarise(&outcomes, &spec, seeds, started.elapsed().as_secs_f64());
    print(&report);
    if let Some(p) = &plots {
        println!("plots in {}", p.display());
    }
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

/// The agent's evidence with every other candidate measured ([`cellwright_loop::hindsight`]):
/// a bound, not a strategy.
const HINDSIGHT: &str = "hindsight";

/// Runs every strategy of `task` in a loop of its own and reports it, with the hits the
/// agent's evidence finds in hindsight.
async fn one(
    store: &cellwright_store::SqliteStore,
    task: &Task,
    name: &str,
    spec: &str,
    cancel: &CancelToken,
) -> anyhow::Result<(LoopReport, usize)> {
    let id = format!("bench-{name}-{}", task.seed);
    let setup = tokio::task::block_in_place(|| {
        Setup::prepare(task.clone(), id, &cellwright_core::NoProgress, cancel)
    })?;
    let strategies = crate::loop_cmd::strategies(task, spec, store, cancel).await?;
    cellwright_loop::run(
        store,
        &setup,
        &strategies,
        &cellwright_core::NoProgress,
        cancel,
    )
    .await?;
    let truth = tokio::task::block_in_place(|| cellwright_loop::truth(&setup, cancel))?;
    let hindsight = cellwright_loop::hindsight(&setup, &truth)
        .iter()
        .filter(|g| truth.hits.contains(g))
        .count()
        .min(task.top_k as usize);
    Ok((
        cellwright_loop::report(store, &setup, truth).await?,
        hindsight,
    ))
}

fn summarise(outcomes: &[Outcome], model: &str, seeds: u64, seconds: f64) -> Value {
    let total = |pick: &dyn Fn(&Outcome) -> bool, strategy: &str| -> usize {
        outcomes
            .iter()
            .filter(|o| pick(o))
            .map(|o| o.hits.get(strategy).copied().unwrap_or(0))
            .sum()
    };
    let ratio = |pick: &dyn Fn(&Outcome) -> bool, baseline: &str| {
        // Undefined (null in the JSON) when the baseline found nothing.
        let (a, b) = (total(pick, "agent"), total(pick, baseline));
        (b > 0).then(|| a as f64 / b as f64)
    };
    let all = |_: &Outcome| true;
    let depmap = |o: &Outcome| o.family == "depmap";
    let simulator = |o: &Outcome| o.family == "simulator";
    let harmful = |o: &Outcome| o.harmful;
    let mean = |pick: &dyn Fn(&Outcome) -> bool, strategy: &str| {
        let n = outcomes.iter().filter(|o| pick(o)).count().max(1);
        total(pick, strategy) as f64 / n as f64
    };
    let mut tasks: BTreeMap<&str, Value> = BTreeMap::new();
    for o in outcomes {
        let entry = tasks.entry(o.task).or_insert_with(
            || json!({"family": o.family, "top_k": o.top_k, "picks": o.picks, "runs": []}),
        );
        if let Some(runs) = entry["runs"].as_array_mut() {
            runs.push(json!({"seed": o.seed, "hits": o.hits}));
        }
    }
    for (name, entry) in tasks.iter_mut() {
        let of_task = |o: &Outcome| o.task == *name;
        let means: BTreeMap<&str, f64> =
            ["agent", "random", "greedy", "knowledge_prior", HINDSIGHT]
                .into_iter()
                .map(|s| (s, mean(&of_task, s)))
                .collect();
        entry["mean_hits"] = json!(means);
    }
    let wins = |baseline: &str| {
        tasks
            .values()
            .filter(|t| {
                let m = &t["mean_hits"];
                m["agent"].as_f64() > m[baseline].as_f64()
            })
            .count()
    };
    json!({
        "model": model,
        "seeds": seeds,
        "seconds": seconds,
        "ratios": {
            "agent_hits_over_random": ratio(&all, "random"),
            "agent_hits_over_greedy": ratio(&all, "greedy"),
            "agent_hits_over_knowledge_prior": ratio(&all, "knowledge_prior"),
            "depmap_agent_hits_over_knowledge_prior": ratio(&depmap, "knowledge_prior"),
            "simulator_agent_hits_over_knowledge_prior": ratio(&simulator, "knowledge_prior"),
            "simulator_agent_hits_over_greedy": ratio(&simulator, "greedy"),
            "depmap_agent_hits_over_greedy": ratio(&depmap, "greedy"),
        },
        "most_harmful_hits_at_50": {
            "agent": mean(&harmful, "agent"),
            "knowledge_prior": mean(&harmful, "knowledge_prior"),
            "greedy": mean(&harmful, "greedy"),
            "random": mean(&harmful, "random"),
            HINDSIGHT: mean(&harmful, HINDSIGHT),
        },
        "tasks_where_agent_wins": {
            "over_random": wins("random"),
            "over_greedy": wins("greedy"),
            "over_knowledge_prior": wins("knowledge_prior"),
            "of": tasks.len(),
        },
        "tasks": tasks,
    })
}

fn print(report: &Value) {
    println!(
        "{:<22} {:>9} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "task", "family", "top k", "agent", "random", "greedy", "prior", HINDSIGHT
    );
    for (name, t) in report["tasks"].as_object().into_iter().flatten() {
        let m = &t["mean_hits"];
        let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<22} {:>9} {:>6} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>9.1}",
            t["family"].as_str().unwrap_or(""),
            t["top_k"],
            f("agent"),
            f("random"),
            f("greedy"),
            f("knowledge_prior"),
            f(HINDSIGHT)
        );
    }
    println!(
        "\nmost harmful (DepMap, 50 picks): {}",
        report["most_harmful_hits_at_50"]
    );
    println!(
        "tasks where the agent wins: {}",
        report["tasks_where_agent_wins"]
    );
    println!("\nratios");
    for (k, v) in report["ratios"].as_object().into_iter().flatten() {
        println!("  {k:<45} {:.3}", v.as_f64().unwrap_or(f64::NAN));
    }
}
