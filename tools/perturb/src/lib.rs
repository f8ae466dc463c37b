//! Perturbation tools: `predict_perturbation` predicts how knocking out or overexpressing
//! genes changes every other gene, with the learned regulatory path behind each change, and
//! `compare_perturbations` sets two perturbations' predicted effects side by side.
//!
//! The models (cellwright-perturb) are fitted on every perturbed group of a screen: a
//! catalogue Boolean model's simulated screen, or a data set with `obs.perturbation`. Screens
//! and fitted models are kept in [`PerturbState`], so repeated calls are fast; `cellwright
//! perturb` uses the same state.
//!
//! ```no_run
//! # async fn example() -> Result<(), cellwright_core::ToolError> {
//! use cellwright_core::{Tool, ToolCtx};
//! use cellwright_tools_perturb::{PerturbState, PredictPerturbation, PredictPerturbationArgs};
//!
//! let tool = PredictPerturbation(PerturbState::default());
//! let args = PredictPerturbationArgs::knockout("krumsiek_myeloid", &["GATA1"]);
//! let out = tool.call(&ToolCtx::detached(0), args).await?;
//! println!("{}", out.summary);
//! # Ok(()) }
//! ```

mod model;

pub use model::{
    COLUMN, Comparison, DEFAULT_PAIRS, Difference, GeneChange, Model, PerturbState, Prediction,
    Screen, perturb_error, round3,
};

use cellwright_core::{ArgIssue, Tool, ToolCtx, ToolError};
use cellwright_perturb::{Direction, Method};
use cellwright_sim::Perturbation;
use schemars::JsonSchema;
use serde::Deserialize;

async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::failed(format!("the tool's work stopped: {e}")))?
}

fn knockout() -> Direction {
    Direction::Knockout
}

fn default_top() -> u32 {
    10
}

/// Refuses an empty gene list, a blank name or a gene named twice, at its JSON path.
fn check_genes(tool: &str, path: &str, genes: &[String]) -> Result<(), ToolError> {
    let issue = |path: String, message: String| ToolError::InvalidArgs {
        tool: tool.to_owned(),
        issues: vec![ArgIssue { path, message }],
    };
    if genes.is_empty() {
        return Err(issue(
            path.to_owned(),
            "name at least one gene to perturb".into(),
        ));
    }
    for (i, g) in genes.iter().enumerate() {
        let at = format!("{path}/{i}");
        if g.trim().is_empty() {
            return Err(issue(at, "a gene name is empty".into()));
        }
        if genes[..i]
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(g.trim()))
        {
            return Err(issue(at, format!("{} is named twice", g.trim())));
        }
    }
    Ok(())
}

/// Predict the effect of knocking out or overexpressing genes.
#[derive(Debug, Clone, Default)]
pub struct PredictPerturbation(pub PerturbState);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictPerturbationArgs {
    /// A catalogue Boolean model (e.g. `krumsiek_myeloid`), whose screen is simulated; or a
    /// data set with an obs `perturbation` column (from run_knockout_screen or load_dataset).
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = [cellwright_core::domains::BOOLEAN_MODEL, cellwright_core::domains::DATASET]))]
    pub data: String,
    /// The genes perturbed together.
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-domain" = [cellwright_core::domains::MODEL_NODE, cellwright_core::domains::GENE]))]
    pub genes: Vec<String>,
    /// `knockout` (the default) or `overexpression`.
    #[serde(default = "knockout")]
    pub direction: Direction,
    /// The model that predicts; `ensemble` by default. Only `ensemble` and `mechanistic`
    /// give the path behind each change.
    #[serde(default)]
    pub model: Method,
    /// Genes to list.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 50))]
    pub top: u32,
    /// Seed of the simulated screen and the model; 0 when absent, so that calls share one
    /// screen and one fitted model.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl PredictPerturbationArgs {
    /// A knockout of `genes` in `data` with the defaults.
    pub fn knockout(data: &str, genes: &[&str]) -> Self {
        Self {
            data: data.to_owned(),
            genes: genes.iter().map(|g| (*g).to_owned()).collect(),
            direction: Direction::Knockout,
            model: Method::default(),
            top: default_top(),
            seed: None,
        }
    }
}

impl Tool for PredictPerturbation {
    const NAME: &'static str = "predict_perturbation";
    type Args = PredictPerturbationArgs;
    type Output = Prediction;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/predict_perturbation.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        check_genes(Self::NAME, "/genes", &args.genes)?;
        let (state, worker) = (self.0.clone(), ctx.clone());
        off_async(move || {
            let (progress, cancel) = (&*worker.progress, &worker.cancel);
            let data = args.data.trim();
            let seed = args.seed.unwrap_or(0);
            let model = state.model(data, args.model, seed, progress, cancel)?;
            let p = model.screen.perturbation(&args.genes, args.direction)?;
            model.predict(&p, args.top as usize)
        })
        .await
    }
}

/// Compare the predicted effects of two perturbations.
#[derive(Debug, Clone, Default)]
pub struct ComparePerturbations(pub PerturbState);

/// Genes perturbed together, one way.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerturbationArg {
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-domain" = [cellwright_core::domains::MODEL_NODE, cellwright_core::domains::GENE]))]
    pub genes: Vec<String>,
    /// `knockout` (the default) or `overexpression`.
    #[serde(default = "knockout")]
    pub direction: Direction,
}

impl PerturbationArg {
    pub fn knockout(genes: &[&str]) -> Self {
        Self {
            genes: genes.iter().map(|g| (*g).to_owned()).collect(),
            direction: Direction::Knockout,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComparePerturbationsArgs {
    /// A catalogue Boolean model (e.g. `krumsiek_myeloid`) or a data set with an obs
    /// `perturbation` column, as for predict_perturbation.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = [cellwright_core::domains::BOOLEAN_MODEL, cellwright_core::domains::DATASET]))]
    pub data: String,
    pub a: PerturbationArg,
    pub b: PerturbationArg,
    /// The model that predicts; `ensemble` by default.
    #[serde(default)]
    pub model: Method,
    /// Genes to list.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 50))]
    pub top: u32,
    /// Seed of the simulated screen and the model; 0 when absent.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Tool for ComparePerturbations {
    const NAME: &'static str = "compare_perturbations";
    type Args = ComparePerturbationsArgs;
    type Output = Comparison;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/compare_perturbations.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        check_genes(Self::NAME, "/a/genes", &args.a.genes)?;
        check_genes(Self::NAME, "/b/genes", &args.b.genes)?;
        let (state, worker) = (self.0.clone(), ctx.clone());
        off_async(move || {
            let (progress, cancel) = (&*worker.progress, &worker.cancel);
            let data = args.data.trim();
            let seed = args.seed.unwrap_or(0);
            let model = state.model(data, args.model, seed, progress, cancel)?;
            let a: Perturbation = model.screen.perturbation(&args.a.genes, args.a.direction)?;
            let b: Perturbation = model.screen.perturbation(&args.b.genes, args.b.direction)?;
            if a == b {
                return Err(ToolError::InvalidArgs {
                    tool: Self::NAME.to_owned(),
                    issues: vec![ArgIssue {
                        path: "/b".into(),
                        message: format!(
                            "a and b are both {}: compare two different perturbations",
                            a.label()
                        ),
                    }],
                });
            }
            model.compare(&a, &b, args.top as usize)
        })
        .await
    }
}
