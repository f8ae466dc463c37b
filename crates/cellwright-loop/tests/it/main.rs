//! Loops on small screens with a real ledger (SQLite files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_data::genesets::{Collection, GeneSet};
use cellwright_loop::{
    Backend, DepmapScreen, Direction, Knowledge, LoopError, Setup, SimulatedScreen, StrategyKind,
    Task, baselines,
};
use cellwright_store::SqliteStore;
use serde_json::Value;

/// 40 genes: H1..H8 are hits (effect −2), the rest do nothing much. H1, H2 and N1 make up
/// the "ribosome" (the prior's machinery); H1..H8 share a complex, N1..N8 another.
fn screen(dir: &std::path::Path) -> (DepmapScreen, Vec<Collection>) {
    let mut text = String::from(",ACH-1,ACH-2\n");
    let mut genes = Vec::new();
    for i in 1..=8 {
        genes.push((format!("H{i}"), -2.0 - 0.01 * f64::from(i)));
    }
    for i in 1..=32 {
        genes.push((format!("N{i}"), -0.1 + 0.001 * f64::from(i)));
    }
    for (g, v) in &genes {
        text.push_str(&format!("{g},{v},{}\n", v + 0.2));
    }
    let path = dir.join("screen.csv");
    std::fs::write(&path, text).unwrap();
    let screen = DepmapScreen::read(&path, "toy", None).unwrap();
    let h: Vec<String> = (1..=8).map(|i| format!("H{i}")).collect();
    let n: Vec<String> = (1..=8).map(|i| format!("N{i}")).collect();
    let sets = vec![
        GeneSet::new("1", "KEGG_RIBOSOME", ["H1", "H2", "N1"]),
        GeneSet::new("2", "hit complex", h),
        GeneSet::new("3", "other complex", n),
    ];
    (screen, vec![Collection::new("toy", sets)])
}

fn task(strategies: &str, seed: u64) -> Task {
    Task::parse(
        &format!(
            r#"{{"name": "toy", "backend": {{"kind": "depmap", "screen": "toy"}}, "direction": "min",
               "rounds": 3, "batch": 4, "top_k": 8, "strategy": {strategies}, "seed": {seed}}}"#
        ),
        "toy",
    )
    .unwrap()
}

/// A backend that counts the experiments it runs and can stop the loop after some.
struct Counting {
    inner: DepmapScreen,
    runs: Arc<AtomicUsize>,
    stop_after: Option<(usize, CancelToken)>,
}

impl Backend for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn genes(&self) -> &[String] {
        self.inner.genes()
    }
    fn design(&self, gene: &str) -> Value {
        self.inner.design(gene)
    }
    fn measure(&self, gene: &str, cancel: &CancelToken) -> Result<f64, LoopError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((after, token)) = &self.stop_after
            && n >= *after
        {
            token.cancel();
        }
        self.inner.measure(gene, cancel)
    }
    fn neutral(&self, cancel: &CancelToken) -> Result<f64, LoopError> {
        self.inner.neutral(cancel)
    }
}

fn setup(dir: &std::path::Path, id: &str, task: Task, backend: Counting) -> Setup {
    let (_, collections) = screen(dir);
    let candidates = cellwright_loop::candidates(&task, &backend).unwrap();
    let knowledge = Knowledge::from_collections(&candidates, &collections, task.direction);
    Setup {
        loop_id: id.into(),
        task,
        candidates,
        backend: Box::new(backend),
        knowledge,
        neutral: 0.0,
        pace: Default::default(),
    }
}

fn counting(
    dir: &std::path::Path,
    stop_after: Option<(usize, CancelToken)>,
) -> (Counting, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let backend = Counting {
        inner: screen(dir).0,
        runs: runs.clone(),
        stop_after,
    };
    (backend, runs)
}

/// (strategy, round, gene, hypothesis, result) of every experiment.
async fn picks(store: &SqliteStore, id: &str) -> Vec<(String, u32, String, String, Option<f64>)> {
    store
        .ledger(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.strategy, e.round, e.gene, e.hypothesis, e.result))
        .collect()
}

const ALL: &str = r#"["agent", "random", "greedy", "knowledge_prior"]"#;

#[tokio::test]
async fn every_strategy_spends_its_budget_on_distinct_genes_the_same_way_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.db")).await.unwrap();
    let cancel = CancelToken::new();
    for id in ["a", "b"] {
        let (backend, runs) = counting(dir.path(), None);
        let s = setup(dir.path(), id, task(ALL, 3), backend);
        cellwright_loop::run(
            &store,
            &s,
            &baselines(&s.task.strategy),
            &NoProgress,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4 * 12);
    }
    let a = picks(&store, "a").await;
    assert_eq!(a, picks(&store, "b").await);
    for kind in StrategyKind::ALL {
        let genes: std::collections::HashSet<&str> = a
            .iter()
            .filter(|p| p.0 == kind.as_str())
            .map(|p| p.2.as_str())
            .collect();
        assert_eq!(genes.len(), 12, "{kind:?}");
    }
    assert!(a.iter().all(|p| p.4.is_some()));
    // Another seed, other random picks.
    let (backend, _) = counting(dir.path(), None);
    let s = setup(dir.path(), "c", task(r#""random""#, 4), backend);
    cellwright_loop::run(
        &store,
        &s,
        &baselines(&s.task.strategy),
        &NoProgress,
        &cancel,
    )
    .await
    .unwrap();
    let random = |p: &Vec<(String, u32, String, String, Option<f64>)>| {
        p.iter()
            .filter(|p| p.0 == "random")
            .map(|p| p.2.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(random(&a), random(&picks(&store, "c").await));
}

#[tokio::test]
async fn a_stopped_loop_resumes_from_its_ledger_and_runs_no_experiment_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.db")).await.unwrap();
    let (backend, _) = counting(dir.path(), None);
    let whole = setup(dir.path(), "whole", task(ALL, 1), backend);
    let strategies = baselines(&whole.task.strategy);
    cellwright_loop::run(
        &store,
        &whole,
        &strategies,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .unwrap();

    // Stopped mid-round (after 7 experiments), then resumed; twice, to resume a resumed loop.
    let mut total = 0;
    for stop in [Some(7), Some(9), None] {
        let cancel = CancelToken::new();
        let (backend, runs) = counting(dir.path(), stop.map(|n| (n, cancel.clone())));
        let s = setup(dir.path(), "stopped", task(ALL, 1), backend);
        let outcome = cellwright_loop::run(&store, &s, &strategies, &NoProgress, &cancel).await;
        match stop {
            Some(_) => assert!(matches!(outcome, Err(LoopError::Cancelled)), "{outcome:?}"),
            None => outcome.unwrap(),
        }
        total += runs.load(Ordering::SeqCst);
    }
    assert_eq!(total, 4 * 12, "every experiment ran once");
    assert_eq!(picks(&store, "stopped").await, picks(&store, "whole").await);
    assert!(
        store
            .ledger("stopped")
            .await
            .unwrap()
            .iter()
            .all(|e| e.attempts == 1)
    );

    // A loop resumed with another task is refused.
    let (backend, _) = counting(dir.path(), None);
    let s = setup(dir.path(), "stopped", task(ALL, 2), backend);
    let err = cellwright_loop::run(&store, &s, &strategies, &NoProgress, &CancelToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("different task"), "{err}");
}

#[tokio::test]
async fn the_agent_learns_from_its_results_where_the_prior_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.db")).await.unwrap();
    let (backend, _) = counting(dir.path(), None);
    let s = setup(dir.path(), "learn", task(ALL, 0), backend);
    let strategies = baselines(&s.task.strategy);
    let cancel = CancelToken::new();
    cellwright_loop::run(&store, &s, &strategies, &NoProgress, &cancel)
        .await
        .unwrap();
    let truth = cellwright_loop::truth(&s, &cancel).unwrap();
    assert_eq!(truth.top.len(), 8);
    assert_eq!(truth.top[0].0, "H8");
    let report = cellwright_loop::report(&store, &s, truth).await.unwrap();
    let hits = |name: &str| {
        report
            .strategies
            .iter()
            .find(|r| r.strategy == name)
            .unwrap()
            .final_hits()
    };
    // The prior knows H1 and H2; the agent finds their complex's other members.
    assert_eq!(hits("knowledge_prior").min(2), 2);
    assert!(hits("agent") >= 7, "{}", hits("agent"));
    assert!(hits("agent") > hits("knowledge_prior"));
    assert!(hits("agent") > hits("random"));
    let agent = report
        .strategies
        .iter()
        .find(|r| r.strategy == "agent")
        .unwrap();
    assert!(
        agent
            .picks
            .iter()
            .any(|p| p.hypothesis.contains("hit complex has")),
        "{:?}",
        agent.picks
    );
    assert_eq!(agent.experiments, [4, 8, 12]);
    let svg = dir.path().join("hits.svg");
    cellwright_loop::plot(&report, &svg).unwrap();
    assert!(
        std::fs::read_to_string(svg)
            .unwrap()
            .contains("knowledge_prior")
    );
}

#[test]
fn in_hindsight_the_agents_evidence_ranks_every_gene_by_the_others_results() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runs) = counting(dir.path(), None);
    let s = setup(dir.path(), "hindsight", task(ALL, 0), backend);
    let truth = cellwright_loop::truth(&s, &CancelToken::new()).unwrap();
    let measured = runs.load(Ordering::SeqCst);
    let picks = cellwright_loop::hindsight(&s, &truth);
    // The budget (3 × 4), best first; no experiment beyond those the truth ran.
    assert_eq!(picks.len(), 12);
    assert_eq!(runs.load(Ordering::SeqCst), measured);
    // Every hit shares the hit complex with the seven others, all measured at about −2, so
    // each ranks above every gene of no effect but N1, which the prior (the ribosome, with
    // H1 and H2) still favours.
    let rank = |g: &str| picks.iter().position(|p| p == g).unwrap_or(usize::MAX);
    let last_hit = (1..=8).map(|i| rank(&format!("H{i}"))).max().unwrap();
    let first_other = (2..=32).map(|i| rank(&format!("N{i}"))).min().unwrap();
    assert!(last_hit < first_other, "{picks:?}");
    assert!(rank("N1") < first_other, "{picks:?}");
}

#[test]
fn screens_refuse_what_they_cannot_measure() {
    let dir = tempfile::tempdir().unwrap();
    let (screen, _) = screen(dir.path());
    let path = dir.path().join("screen.csv");
    let err = DepmapScreen::read(&path, "toy", Some(&["ACH-9".into()])).unwrap_err();
    assert!(
        err.to_string()
            .contains("cell line ACH-9 is not in the toy screen"),
        "{err}"
    );
    let one = DepmapScreen::read(&path, "toy", Some(&["ACH-2".into()])).unwrap();
    assert_eq!(one.cell_lines(), ["ACH-2"]);
    let cancel = CancelToken::new();
    assert!((one.measure("H1", &cancel).unwrap() - (-1.81)).abs() < 1e-9);
    assert!((screen.measure("H1", &cancel).unwrap() - (-1.91)).abs() < 1e-9);
    assert!(screen.measure("GAPDH", &cancel).is_err());
    let err = DepmapScreen::read(&path, "toy", Some(&[])).unwrap_err();
    assert!(
        err.to_string().contains("backend.cell_lines is empty"),
        "{err}"
    );
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, ",ACH-1\nA,\n").unwrap();
    let err = DepmapScreen::read(&empty, "empty", None).unwrap_err();
    assert!(
        err.to_string().contains("no gene has a measured effect"),
        "{err}"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, ",ACH-1\nA,x\n").unwrap();
    let err = DepmapScreen::read(&bad, "bad", None).unwrap_err();
    assert!(
        err.to_string().contains("row 2 (A): \"x\" is not a number"),
        "{err}"
    );

    // Candidates the screen cannot run, or fewer candidates than hits, are refused.
    let refused = |top_k: u32, candidates: &str| {
        let t = Task::parse(
            &format!(
                r#"{{"name": "t", "backend": {{"kind": "depmap", "screen": "toy"}}, "direction": "min",
                    "rounds": 1, "batch": 1, "top_k": {top_k}, "candidates": {candidates}}}"#
            ),
            "t",
        )
        .unwrap();
        cellwright_loop::candidates(&t, &screen)
            .unwrap_err()
            .to_string()
    };
    let err = refused(1, r#"["H1", "GAPDH"]"#);
    assert!(err.contains("1 of the candidates cannot be run"), "{err}");
    let err = refused(3, r#"["H1", "H2"]"#);
    assert!(
        err.contains("top_k is 3 but there are only 2 candidates"),
        "{err}"
    );
}

/// A → T (activation), R ⊣ T (repression), B → A: knocking out A lowers T, knocking out R
/// raises it; the prior puts A first for a loop looking for lower T, and B behind it.
#[test]
fn the_simulator_measures_knockouts_and_the_wiring_is_the_prior() {
    let net = BooleanNetwork::parse_bnet("A, B\nB, B\nR, R\nT, A & !R\n", "toy").unwrap();
    let screen = SimulatedScreen::new(net.clone(), "toy", "T", 64, 0).unwrap();
    let cancel = CancelToken::new();
    assert_eq!(screen.genes(), ["A", "B", "R"]);
    let control = screen.neutral(&cancel).unwrap();
    let a = screen.measure("A", &cancel).unwrap();
    let r = screen.measure("R", &cancel).unwrap();
    assert!(a < control - 0.05, "A KO {a} vs control {control}");
    assert!(r > control + 0.05, "R KO {r} vs control {control}");
    assert!(screen.measure("T", &cancel).is_err());
    assert!(SimulatedScreen::new(net.clone(), "toy", "Z", 64, 0).is_err());

    let candidates: Vec<String> = screen.genes().to_vec();
    let k = Knowledge::from_network(&candidates, &net, "T", Direction::Min);
    assert_eq!(k.prior, [1.0, 0.5, 0.3]);
    assert_eq!(k.prior_reason[0].as_deref(), Some("directly activates T"));
    assert_eq!(
        k.prior_reason[1].as_deref(),
        Some("activates T through 2 steps")
    );
    assert_eq!(k.prior_reason[2].as_deref(), Some("directly represses T"));
    let k = Knowledge::from_network(&candidates, &net, "T", Direction::Max);
    assert_eq!(k.prior, [0.3, 0.15, 1.0]);
}
