//! # cellwright-loop
//!
//! Automated hypothesis loops. A [`Task`] names where experiments run (a [`Backend`]: the
//! simulator knocking out nodes of a published model, or the DepMap CRISPR table revealing a
//! gene's measured effect), the phenotype's direction, the candidates, a budget of rounds ×
//! batch and the strategies to compare. Each round a [`Strategy`] picks genes with a
//! hypothesis per pick; the picks go into the experiment ledger of the store *before* they
//! run and their results after, so a loop killed at any point resumes from its ledger and no
//! experiment runs twice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cellwright_loop::{DepmapScreen, Knowledge, Setup, Task};
//! let task = Task::parse(r#"{"name": "liver", "backend": {"kind": "depmap", "screen": "liver"},
//!     "direction": "min", "rounds": 5, "batch": 10, "strategy": ["greedy", "random"]}"#, "inline")?;
//! let backend = DepmapScreen::read("liver.csv".as_ref(), "liver", None)?;
//! let candidates = cellwright_loop::candidates(&task, &backend)?;
//! let knowledge = Knowledge::from_collections(&candidates, &[], task.direction);
//! let setup = Setup { loop_id: "loop-1".into(), task, candidates, backend: Box::new(backend),
//!     knowledge, neutral: 0.0, pace: Default::default() };
//! let store = cellwright_store::SqliteStore::open("runs.db").await?;
//! let strategies = cellwright_loop::baselines(&setup.task.strategy);
//! let cancel = cellwright_core::CancelToken::new();
//! cellwright_loop::run(&store, &setup, &strategies, &cellwright_core::NoProgress, &cancel).await?;
//! let truth = cellwright_loop::truth(&setup, &cancel)?;
//! let report = cellwright_loop::report(&store, &setup, truth).await?;
//! println!("{} hits", report.strategies[0].final_hits());
//! # Ok(()) }
//! ```

pub mod backend;
pub mod knowledge;
pub mod run;
pub mod strategy;
pub mod task;

pub use backend::{Backend, DepmapScreen, SimulatedScreen};
pub use knowledge::Knowledge;
pub use run::{
    LoopReport, Setup, StrategyReport, Truth, candidates, hindsight, plot, report, run, truth,
};
pub use strategy::{
    Agent, Chooser, Greedy, KnowledgePrior, ModelChooser, Pick, RandomPicks, Strategy,
};
pub use task::{BackendSpec, Candidates, Direction, StrategyKind, Task, TaskError};

/// Why a loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    TaskFile(#[from] TaskError),
    /// The task does not fit its backend (unknown genes, cell lines, node…).
    #[error("{0}")]
    Task(String),
    #[error("{path}: {message}")]
    Data { path: String, message: String },
    #[error("an experiment failed: {0}")]
    Experiment(String),
    #[error(transparent)]
    Store(#[from] cellwright_core::StoreError),
    #[error("cannot write the output: {0}")]
    Output(String),
    #[error("cancelled")]
    Cancelled,
}

/// The strategies named, the agent without a language model (it then takes its ranking's
/// top picks).
pub fn baselines(kinds: &[StrategyKind]) -> Vec<Box<dyn Strategy>> {
    kinds.iter().map(|&k| strategy(k, None)).collect()
}

/// The strategy of `kind`; `chooser` is the agent's language model.
pub fn strategy(kind: StrategyKind, chooser: Option<Box<dyn Chooser>>) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Agent => Box::new(Agent { chooser }),
        StrategyKind::Random => Box::new(RandomPicks),
        StrategyKind::Greedy => Box::new(Greedy),
        StrategyKind::KnowledgePrior => Box::new(KnowledgePrior),
    }
}
