//! Running a loop: plan a round into the ledger, run its experiments, record each result,
//! repeat; and the report of hits against the true top candidates.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cellwright_core::{CancelToken, Progress};
use cellwright_store::{Experiment, Planned, SqliteStore};
use serde::Serialize;

use crate::LoopError;
use crate::backend::Backend;
use crate::knowledge::Knowledge;
use crate::strategy::{RoundInput, Strategy};
use crate::task::{Direction, Task};

/// A loop ready to run: the task, its candidates, where experiments run and what is known.
pub struct Setup {
    pub loop_id: String,
    pub task: Task,
    pub candidates: Vec<String>,
    pub backend: Box<dyn Backend>,
    pub knowledge: Knowledge,
    /// The phenotype with nothing knocked out.
    pub neutral: f64,
    /// A pause after each experiment (to watch a loop, or to kill it mid-way in a test).
    pub pace: Duration,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("loop_id", &self.loop_id)
            .field("task", &self.task.name)
            .field("backend", &self.backend.describe())
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

/// The genes a task may pick, in the backend's order; unknown genes are an error that
/// names them.
pub fn candidates(task: &Task, backend: &dyn Backend) -> Result<Vec<String>, LoopError> {
    let genes = backend.genes();
    let list = match &task.candidates {
        crate::task::Candidates::All => genes.to_vec(),
        crate::task::Candidates::Genes(list) => {
            let known: HashSet<&str> = genes.iter().map(String::as_str).collect();
            let unknown: Vec<&str> = list
                .iter()
                .map(String::as_str)
                .filter(|g| !known.contains(g))
                .collect();
            if let Some(first) = unknown.first() {
                return Err(LoopError::Task(format!(
                    "{} of the candidates cannot be run in {}: {}{}",
                    unknown.len(),
                    backend.describe(),
                    unknown
                        .iter()
                        .take(5)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", "),
                    cellwright_core::did_you_mean(&cellwright_core::closest_matches(
                        first,
                        genes.iter().map(String::as_str),
                        0.85,
                        3
                    ))
                )));
            }
            list.clone()
        }
    };
    if (task.top_k as usize) > list.len() {
        return Err(LoopError::Task(format!(
            "top_k is {} but there are only {} candidates",
            task.top_k,
            list.len()
        )));
    }
    Ok(list)
}

/// Runs (or resumes) every strategy of the task to its budget. Rounds already planned in
/// the ledger are not planned again, and experiments with a result are not run again.
pub async fn run(
    store: &SqliteStore,
    setup: &Setup,
    strategies: &[Box<dyn Strategy>],
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(), LoopError> {
    let task_json =
        serde_json::to_value(&setup.task).map_err(|e| LoopError::Task(e.to_string()))?;
    let stored = store.ledger_open(&setup.loop_id, &task_json).await?;
    if stored != task_json {
        return Err(LoopError::Task(format!(
            "loop {} was started with a different task; resume it with that task (its ledger keeps it)",
            setup.loop_id
        )));
    }
    let total = (setup.task.budget().min(setup.candidates.len()) * strategies.len()) as u64;
    let index: HashMap<&str, usize> = setup
        .candidates
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let mut done = 0u64;
    for strategy in strategies {
        let name = strategy.kind().as_str();
        for round in 0..setup.task.rounds {
            if cancel.is_cancelled() {
                return Err(LoopError::Cancelled);
            }
            let ledger: Vec<Experiment> = store
                .ledger(&setup.loop_id)
                .await?
                .into_iter()
                .filter(|e| e.strategy == name)
                .collect();
            let mut this_round: Vec<&Experiment> =
                ledger.iter().filter(|e| e.round == round).collect();
            let planned_now;
            if this_round.is_empty() {
                let input = RoundInput {
                    task: &setup.task,
                    describe: &setup.backend.describe(),
                    round,
                    candidates: &setup.candidates,
                    knowledge: &setup.knowledge,
                    neutral: setup.neutral,
                    untested: (0..setup.candidates.len())
                        .filter(|&g| !ledger.iter().any(|e| e.gene == setup.candidates[g]))
                        .collect(),
                    tested: ledger
                        .iter()
                        .filter_map(|e| Some((*index.get(e.gene.as_str())?, e.result?)))
                        .collect(),
                };
                if input.batch() == 0 {
                    break;
                }
                let picks = strategy.propose(&input).await?;
                let planned: Vec<Planned> = picks
                    .iter()
                    .map(|p| {
                        let gene = &setup.candidates[p.gene];
                        Planned {
                            gene: gene.clone(),
                            hypothesis: p.hypothesis.clone(),
                            design: setup.backend.design(gene),
                        }
                    })
                    .collect();
                store
                    .ledger_plan(&setup.loop_id, name, round, &planned)
                    .await?;
                planned_now = store.ledger(&setup.loop_id).await?;
                this_round = planned_now
                    .iter()
                    .filter(|e| e.strategy == name && e.round == round)
                    .collect();
            }
            for e in this_round {
                if e.result.is_none() {
                    if cancel.is_cancelled() {
                        return Err(LoopError::Cancelled);
                    }
                    store.ledger_start(&setup.loop_id, name, &e.gene).await?;
                    let value = setup.backend.measure(&e.gene, cancel)?;
                    store
                        .ledger_result(&setup.loop_id, name, &e.gene, value)
                        .await?;
                    if !setup.pace.is_zero() {
                        tokio::time::sleep(setup.pace).await;
                    }
                }
                done += 1;
                progress.report(done, Some(total), &format!("{name}, round {}", round + 1));
            }
        }
    }
    Ok(())
}

/// One experiment as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PickReport {
    pub round: u32,
    pub gene: String,
    pub hypothesis: String,
    pub result: Option<f64>,
    /// Whether the gene is one of the true top `top_k`.
    pub hit: bool,
    /// Runs of it that started (more than 1 only if a killed loop repeated it).
    pub attempts: u32,
}

/// How one strategy did.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyReport {
    pub strategy: String,
    /// Experiments run by the end of each round.
    pub experiments: Vec<usize>,
    /// True top-k genes (or their ties) found by the end of each round, at most k.
    pub hits: Vec<usize>,
    pub picks: Vec<PickReport>,
}

impl StrategyReport {
    pub fn final_hits(&self) -> usize {
        self.hits.last().copied().unwrap_or(0)
    }
}

/// A loop's outcome, from its ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LoopReport {
    pub loop_id: String,
    pub task: Task,
    pub backend: String,
    pub candidates: usize,
    pub truth: Truth,
    /// Hits random picks find on average by the end of each round.
    pub random_expected: Vec<f64>,
    pub strategies: Vec<StrategyReport>,
}

/// What counts as a hit: the true top `top_k` candidates (every candidate measured, for the
/// report only; no strategy sees it), and every other candidate within the backend's
/// resolution of the k-th best, which a measurement cannot tell from it.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// The top `top_k` and their phenotypes, best first.
    pub top: Vec<(String, f64)>,
    /// Every gene that counts as a hit (the top and their ties).
    pub hits: Vec<String>,
    /// Every candidate's phenotype, by candidate.
    #[serde(skip)]
    pub measured: Vec<f64>,
}

pub fn truth(setup: &Setup, cancel: &CancelToken) -> Result<Truth, LoopError> {
    let d: Direction = setup.task.direction;
    let measured = setup
        .candidates
        .iter()
        .map(|g| setup.backend.measure(g, cancel))
        .collect::<Result<Vec<_>, LoopError>>()?;
    let mut all: Vec<(String, f64)> = setup
        .candidates
        .iter()
        .cloned()
        .zip(measured.iter().copied())
        .collect();
    all.sort_by(|a, b| {
        d.orient(b.1)
            .total_cmp(&d.orient(a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    let k = (setup.task.top_k as usize).min(all.len());
    let bar = d.orient(all[k - 1].1) - setup.backend.resolution();
    let hits = all
        .iter()
        .take_while(|(_, v)| d.orient(*v) >= bar)
        .map(|(g, _)| g.clone())
        .collect();
    all.truncate(k);
    Ok(Truth {
        top: all,
        hits,
        measured,
    })
}

/// The agent's evidence in hindsight: every candidate assessed as if every other candidate
/// had been measured (with `truth`'s phenotypes), and the best `budget` of them. Not a
/// strategy (it sees every result): the most the agent's evidence could find within the
/// budget, which says whether a miss is the learner's or the knowledge's.
pub fn hindsight(setup: &Setup, truth: &Truth) -> Vec<String> {
    let n = setup.candidates.len();
    let describe = setup.backend.describe();
    let score = |g: usize| {
        let input = RoundInput {
            task: &setup.task,
            describe: &describe,
            round: setup.task.rounds,
            candidates: &setup.candidates,
            knowledge: &setup.knowledge,
            neutral: setup.neutral,
            untested: vec![g],
            tested: (0..n)
                .filter(|&t| t != g)
                .map(|t| (t, truth.measured[t]))
                .collect(),
        };
        crate::strategy::Agent::expected(&input)[0]
    };
    let scores: Vec<f64> = (0..n).map(score).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(setup.task.budget())
        .map(|g| setup.candidates[g].clone())
        .collect()
}

/// The report of loop `setup.loop_id` from its ledger, against `truth`.
pub async fn report(
    store: &SqliteStore,
    setup: &Setup,
    truth: Truth,
) -> Result<LoopReport, LoopError> {
    let top: HashSet<&str> = truth.hits.iter().map(String::as_str).collect();
    let k = setup.task.top_k as usize;
    let ledger = store.ledger(&setup.loop_id).await?;
    let mut strategies: Vec<StrategyReport> = Vec::new();
    for e in &ledger {
        let at = match strategies.iter().position(|s| s.strategy == e.strategy) {
            Some(at) => at,
            None => {
                strategies.push(StrategyReport {
                    strategy: e.strategy.clone(),
                    experiments: Vec::new(),
                    hits: Vec::new(),
                    picks: Vec::new(),
                });
                strategies.len() - 1
            }
        };
        strategies[at].picks.push(PickReport {
            round: e.round,
            gene: e.gene.clone(),
            hypothesis: e.hypothesis.clone(),
            result: e.result,
            hit: top.contains(e.gene.as_str()),
            attempts: e.attempts,
        });
    }
    for s in &mut strategies {
        let rounds = s.picks.iter().map(|p| p.round + 1).max().unwrap_or(0);
        for r in 0..rounds {
            let upto = s
                .picks
                .iter()
                .filter(|p| p.round <= r && p.result.is_some());
            s.experiments.push(upto.clone().count());
            s.hits.push(upto.filter(|p| p.hit).count().min(k));
        }
    }
    // Task order, not the ledger's alphabetical one.
    strategies.sort_by_key(|s| {
        setup
            .task
            .strategy
            .iter()
            .position(|k| k.as_str() == s.strategy)
            .unwrap_or(usize::MAX)
    });
    let n = setup.candidates.len() as f64;
    let random_expected = (1..=setup.task.rounds)
        .map(|r| {
            let picked = (r as f64 * f64::from(setup.task.batch)).min(n);
            (picked * truth.hits.len() as f64 / n).min(k as f64)
        })
        .collect();
    Ok(LoopReport {
        loop_id: setup.loop_id.clone(),
        task: setup.task.clone(),
        backend: setup.backend.describe(),
        candidates: setup.candidates.len(),
        truth,
        random_expected,
        strategies,
    })
}

/// Hits against experiments run, one line per strategy and a dashed line for random picks'
/// expectation, as an SVG file.
pub fn plot(report: &LoopReport, path: &std::path::Path) -> Result<(), LoopError> {
    use cellwright_eval::plot::{Axes, Series, lines};
    let mut series: Vec<Series> = report
        .strategies
        .iter()
        .map(|s| Series {
            name: s.strategy.clone(),
            points: std::iter::once((0.0, 0.0))
                .chain(
                    s.experiments
                        .iter()
                        .zip(&s.hits)
                        .map(|(&e, &h)| (e as f64, h as f64)),
                )
                .collect(),
        })
        .collect();
    let batch = f64::from(report.task.batch);
    series.push(Series {
        name: "random (expected)".into(),
        points: std::iter::once((0.0, 0.0))
            .chain(
                report
                    .random_expected
                    .iter()
                    .enumerate()
                    .map(|(r, &h)| (((r + 1) as f64 * batch).min(report.candidates as f64), h)),
            )
            .collect(),
    });
    let title = format!("{}: true top {} found", report.task.name, report.task.top_k);
    let axes = Axes {
        title: &title,
        x: "experiments run",
        y: "hits",
        log_x: false,
        log_y: false,
    };
    let max_x = (f64::from(report.task.rounds) * batch).min(report.candidates as f64);
    lines(
        path,
        &axes,
        &series,
        Some(((0.0, max_x), (0.0, f64::from(report.task.top_k)))),
    )
    .map_err(|e| LoopError::Output(e.to_string()))
}

/// Cells the perturbation oracle simulates per knockout, for each of its rate draws.
const ORACLE_CELLS: usize = 16;
const ORACLE_DRAWS: u64 = 4;
/// Mixed into the task seed for the oracle's rates, so they differ from the experiment's.
const ORACLE_SEED: u64 = 0x0a11_ce5e_ed00_0001;

/// What the published model `net`, simulated with kinetic rates of its own
/// ([`ORACLE_DRAWS`] draws for `seed`, averaged), predicts for each candidate's knockout.
fn oracle(
    net: &cellwright_data::boolean::BooleanNetwork,
    name: &str,
    node: &str,
    candidates: &[String],
    seed: u64,
    cancel: &CancelToken,
) -> Result<crate::knowledge::Oracle, LoopError> {
    let (mut predicted, mut control) = (vec![0.0; candidates.len()], 0.0);
    for draw in 0..ORACLE_DRAWS {
        let own = crate::SimulatedScreen::new(
            net.clone(),
            name,
            node,
            ORACLE_CELLS,
            seed ^ ORACLE_SEED.wrapping_add(draw),
        )?;
        for (p, g) in predicted.iter_mut().zip(candidates) {
            *p += own.measure(g, cancel)? / ORACLE_DRAWS as f64;
        }
        control += own.neutral(cancel)? / ORACLE_DRAWS as f64;
    }
    Ok(crate::knowledge::Oracle {
        predicted,
        control,
        source: format!("{name} simulated with rates of its own"),
    })
}

/// The DepMap screens of the catalogue's `depmap-500` data set.
pub const SCREENS: [&str; 3] = ["liver", "melanoma", "neuroblastoma"];

impl Setup {
    /// Everything `task` needs, fetched on first use: its backend (the screen table or the
    /// published model), its candidates and the knowledge about them (the gene-set
    /// collections, or the model's wiring).
    pub fn prepare(
        task: Task,
        loop_id: String,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Self, LoopError> {
        use cellwright_data::catalogue;
        use cellwright_data::genesets::Collection;
        let data = |e: &dyn std::fmt::Display| LoopError::Task(e.to_string());
        let (backend, candidates, knowledge): (Box<dyn Backend>, _, _) = match &task.backend {
            crate::task::BackendSpec::Depmap { screen, cell_lines } => {
                if !SCREENS.contains(&screen.as_str()) {
                    return Err(LoopError::Task(format!(
                        "no DepMap screen named {screen}; the screens are {}",
                        SCREENS.join(", ")
                    )));
                }
                let table = catalogue::find("depmap-500")
                    .and_then(|d| {
                        d.fetch_file(
                            &format!("{screen}_cell_lines_500_genes.csv"),
                            progress,
                            cancel,
                        )
                    })
                    .map_err(|e| data(&e))?;
                let backend = crate::DepmapScreen::read(&table, screen, cell_lines.as_deref())?;
                let candidates = candidates(&task, &backend)?;
                let collections = catalogue::find("gene-sets")
                    .and_then(|d| d.fetch(progress, cancel))
                    .map_err(|e| data(&e))?
                    .iter()
                    .map(|path| {
                        let name = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        Collection::read_csv(path, name).map_err(|e| data(&e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let knowledge =
                    Knowledge::from_collections(&candidates, &collections, task.direction);
                (Box::new(backend), candidates, knowledge)
            }
            crate::task::BackendSpec::Simulator { model, node, cells } => {
                let (net, name) =
                    catalogue::boolean_model(model, progress, cancel).map_err(|e| data(&e))?;
                let backend = crate::SimulatedScreen::new(net, &name, node, *cells, task.seed)?;
                let candidates = candidates(&task, &backend)?;
                let mut knowledge =
                    Knowledge::from_network(&candidates, backend.network(), node, task.direction);
                // The perturbation oracle, for the agent only: the same published wiring,
                // simulated with rates of its own (several draws, averaged), since the
                // experiment's are unknown.
                if task.strategy.contains(&crate::StrategyKind::Agent) {
                    knowledge.oracle = Some(oracle(
                        backend.network(),
                        &name,
                        node,
                        &candidates,
                        task.seed,
                        cancel,
                    )?);
                }
                (Box::new(backend), candidates, knowledge)
            }
        };
        let neutral = backend.neutral(cancel)?;
        Ok(Self {
            loop_id,
            task,
            candidates,
            backend,
            knowledge,
            neutral,
            pace: Duration::ZERO,
        })
    }
}
