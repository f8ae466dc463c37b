//! Simulation tools: cells from a Boolean model's stochastic ODEs under chosen perturbations
//! (`simulate_network`), and knockout screens with a shared control group
//! (`run_knockout_screen`). Each keeps its cells as a data set for `describe_dataset` and
//! stores the matrix (.h5ad) and the ground-truth network (.tsv) as artifacts.

use std::sync::Arc;

use cellwright_core::{ArtifactRef, Tool, ToolCtx, ToolError};
use cellwright_data::catalogue;
use cellwright_data::h5ad;
use cellwright_data::load::LoadedDatasets;
use cellwright_sim::{
    CountNoise, Design, GroupSummary, Perturbation, Screen, Settings, SimError, Simulator,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn failed(message: String) -> ToolError {
    ToolError::Failed {
        message,
        retryable: false,
    }
}

fn sim_error(model: &str, e: SimError) -> ToolError {
    match e {
        SimError::Cancelled => ToolError::Cancelled,
        SimError::UnknownNode { name, suggestions } => ToolError::NotFound {
            what: format!("node of {model}"),
            name,
            suggestions,
        },
        e => failed(e.to_string()),
    }
}

/// What both tools report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SimulationOutput {
    /// Where the model came from.
    pub model: String,
    /// The name under which `describe_dataset` finds the cells (group them by `perturbation`).
    pub dataset: String,
    pub cells: usize,
    pub genes: usize,
    pub seed: u64,
    /// Whether X holds UMI counts (the mRNA levels are then the layer `mrna`) or levels.
    pub counts: bool,
    /// Each perturbation: its cells and the nodes mostly on.
    pub groups: Vec<GroupSummary>,
    /// The matrix as an .h5ad file.
    pub matrix: ArtifactRef,
    /// The model's signed regulator → target edges, the ground truth for network inference.
    pub network: ArtifactRef,
}

/// The shared part of a call: set up, simulate off the async workers, keep, store.
struct Request {
    model: String,
    seed: u64,
    counts: bool,
    settings: Settings,
}

impl Request {
    async fn run(
        self,
        ctx: &ToolCtx,
        datasets: &LoadedDatasets,
        groups: impl FnOnce(&Simulator) -> Result<Vec<(Perturbation, usize)>, SimError> + Send + 'static,
    ) -> Result<SimulationOutput, ToolError> {
        let worker = ctx.clone();
        let Request {
            model,
            seed,
            counts,
            settings,
        } = self;
        let name = model.clone();
        let (source, sim, m) = tokio::task::spawn_blocking(move || {
            let (net, source) = catalogue::boolean_model(&name, &*worker.progress, &worker.cancel)?;
            let simulator =
                Simulator::new(&net, settings, seed).map_err(|e| sim_error(&name, e))?;
            let groups = groups(&simulator).map_err(|e| sim_error(&name, e))?;
            let sim = simulator
                .run(&groups, &*worker.progress, &worker.cancel)
                .map_err(|e| sim_error(&name, e))?;
            let m = if counts {
                sim.counts(&CountNoise::default())
                    .map_err(|e| sim_error(&name, e))?
            } else {
                sim.expression().map_err(|e| failed(e.to_string()))?
            };
            Ok::<_, ToolError>((source, sim, m))
        })
        .await
        .map_err(|e| failed(format!("the simulation stopped: {e}")))??;

        let (cells, genes) = m.shape();
        let dataset = format!("simulated:{model}:seed{seed}:call{}", ctx.call_id.0);
        let bytes = h5ad_bytes(&m)?;
        let summary = format!(
            "{cells} cells × {genes} genes simulated from {source} (seed {seed}), as .h5ad"
        );
        let matrix = ctx
            .store_artifact("result", "application/x-hdf5", &summary, bytes)
            .await?;
        let network = ctx
            .store_artifact(
                "result",
                "text/tab-separated-values",
                &format!(
                    "the {} signed edges of {source}: regulator, target, sign",
                    sim.edges.len()
                ),
                sim.network_tsv().into_bytes(),
            )
            .await?;
        datasets.insert(&dataset, Arc::new(m));
        Ok(SimulationOutput {
            model: source,
            dataset,
            cells,
            genes,
            seed,
            counts,
            groups: sim.summary(),
            matrix,
            network,
        })
    }
}

fn h5ad_bytes(m: &cellwright_data::matrix::ExpressionMatrix) -> Result<Vec<u8>, ToolError> {
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    let path = dir.path().join("cells.h5ad");
    h5ad::write(m, &path).map_err(|e| failed(e.to_string()))?;
    std::fs::read(&path).map_err(|e| failed(e.to_string()))
}

fn default_cells() -> u32 {
    500
}

fn default_duration() -> f64 {
    20.0
}

/// Simulate cells of a Boolean model, optionally perturbed.
#[derive(Debug, Clone, Default)]
pub struct SimulateNetwork(pub LoadedDatasets);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateNetworkArgs {
    /// A catalogue Boolean model, e.g. `krumsiek_myeloid` (`network_info` describes it).
    #[schemars(length(min = 1, max = 200))]
    #[schemars(extend("x-domain" = cellwright_core::domains::BOOLEAN_MODEL))]
    pub model: String,
    #[serde(default = "default_cells")]
    #[schemars(range(min = 1, max = 20000))]
    pub cells: u32,
    /// Nodes to knock out (production 0).
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::KNOCKOUT))]
    pub knockouts: Vec<String>,
    /// Nodes to overexpress (production at its maximum).
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::OVEREXPRESSION))]
    pub overexpressed: Vec<String>,
    /// `steady_state`: every cell at the end of its run; `trajectory`: at a time along it.
    #[serde(default)]
    pub design: Design,
    /// Length of each run, in protein lifetimes.
    #[serde(default = "default_duration")]
    #[schemars(range(min = 0.1, max = 200.0))]
    pub duration: f64,
    /// Draw UMI counts from the mRNA levels, as a droplet protocol would see them.
    #[serde(default)]
    pub counts: bool,
    /// Seed of the rates and the noise; the call's own seed when absent.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Tool for SimulateNetwork {
    const NAME: &'static str = "simulate_network";
    type Args = SimulateNetworkArgs;
    type Output = SimulationOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/simulate_network.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let perturbation = Perturbation {
            knockouts: args.knockouts,
            overexpressed: args.overexpressed,
        };
        let cells = args.cells as usize;
        Request {
            model: args.model.trim().to_owned(),
            seed: args.seed.unwrap_or(ctx.seed),
            counts: args.counts,
            settings: Settings {
                design: args.design,
                duration: args.duration,
                ..Settings::default()
            },
        }
        .run(ctx, &self.0, move |_| Ok(vec![(perturbation, cells)]))
        .await
    }
}

/// A knockout screen of a Boolean model.
#[derive(Debug, Clone, Default)]
pub struct RunKnockoutScreen(pub LoadedDatasets);

fn default_cells_per_perturbation() -> u32 {
    100
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunKnockoutScreenArgs {
    /// A catalogue Boolean model, e.g. `krumsiek_myeloid`.
    #[schemars(length(min = 1, max = 200))]
    #[schemars(extend("x-domain" = cellwright_core::domains::BOOLEAN_MODEL))]
    pub model: String,
    /// Nodes knocked out one at a time; every node when empty.
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    pub singles: Vec<String>,
    /// Double knockouts, drawn (seeded) from the pairs of `singles`.
    #[serde(default)]
    #[schemars(range(max = 500))]
    pub pairs: u32,
    #[serde(default = "default_cells_per_perturbation")]
    #[schemars(range(min = 1, max = 2000))]
    pub cells_per_perturbation: u32,
    /// Draw UMI counts from the mRNA levels.
    #[serde(default)]
    pub counts: bool,
    /// Seed of the rates, the pairs and the noise; the call's own seed when absent.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Tool for RunKnockoutScreen {
    const NAME: &'static str = "run_knockout_screen";
    type Args = RunKnockoutScreenArgs;
    type Output = SimulationOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/run_knockout_screen.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let screen = Screen {
            singles: args.singles,
            pairs: args.pairs as usize,
            cells_per_perturbation: args.cells_per_perturbation as usize,
            control_cells: None,
        };
        Request {
            model: args.model.trim().to_owned(),
            seed: args.seed.unwrap_or(ctx.seed),
            counts: args.counts,
            settings: Settings::default(),
        }
        .run(ctx, &self.0, move |simulator| {
            simulator.screen_groups(&screen)
        })
        .await
    }
}
