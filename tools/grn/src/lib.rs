//! Gene-regulation tools: `infer_grn` ranks every regulator → target edge of an expression
//! data set (the full list stored as an artifact, the top edges returned), and
//! `explain_regulation` gives a gene's top inferred regulators, each checked against a
//! reference network: the Boolean model a simulated data set came from, or Pathway Commons.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cellwright_core::{ArtifactRef, Tool, ToolCtx, ToolError, closest_matches};
use cellwright_data::catalogue;
use cellwright_data::load::LoadedDatasets;
use cellwright_data::regulons::Regulons;
use cellwright_data::text::Orientation;
use cellwright_grn::{GrnError, Method, Network, Options};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn failed(message: String) -> ToolError {
    ToolError::Failed {
        message,
        retryable: false,
    }
}

async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failed(format!("the tool's work stopped: {e}")))?
}

/// What the two tools share: the data sets of the session, the networks inferred from them
/// (by data set name, the latest inference), and Pathway Commons once read.
#[derive(Debug, Clone, Default)]
pub struct GrnState {
    datasets: LoadedDatasets,
    networks: Arc<Mutex<HashMap<String, Arc<Network>>>>,
    regulons: Arc<Mutex<Option<Arc<Regulons>>>>,
}

impl GrnState {
    /// Shares `datasets` with the tools that load and simulate data.
    pub fn new(datasets: LoadedDatasets) -> Self {
        Self {
            datasets,
            ..Self::default()
        }
    }

    /// Infers the network of `dataset` (loading it on first use) and keeps it as the data
    /// set's network; also returns the data set's cell count.
    async fn infer(
        &self,
        ctx: &ToolCtx,
        dataset: &str,
        regulators: Regulators,
        options: Options,
    ) -> Result<(Arc<Network>, usize), ToolError> {
        let (state, worker, name) = (self.clone(), ctx.clone(), dataset.to_owned());
        let (network, cells) = off_async(move || {
            let m = state.datasets.get_or_load(
                &name,
                Orientation::GenesByCells,
                &*worker.progress,
                &worker.cancel,
            )?;
            let regulators = match regulators {
                Regulators::All => None,
                Regulators::HumanTfs => {
                    Some(catalogue::human_tfs(&*worker.progress, &worker.cancel)?)
                }
                Regulators::Named(names) => Some(names),
            };
            let network = cellwright_grn::infer(
                &m,
                regulators.as_deref(),
                &options,
                &*worker.progress,
                &worker.cancel,
            )
            .map_err(grn_error)?;
            Ok((Arc::new(network), m.shape().0))
        })
        .await?;
        self.networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dataset.to_owned(), network.clone());
        Ok((network, cells))
    }

    /// Pathway Commons, fetched and read on first use (on a blocking thread).
    fn regulons(&self, ctx: &ToolCtx) -> Result<Arc<Regulons>, ToolError> {
        let mut slot = self.regulons.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let path = catalogue::find("pathway-commons-regulons")?.fetch_file(
            "",
            &*ctx.progress,
            &ctx.cancel,
        )?;
        let r = Arc::new(Regulons::read(&path).map_err(|e| failed(e.to_string()))?);
        *slot = Some(r.clone());
        Ok(r)
    }
}

/// The candidate regulators of an inference.
#[derive(Debug)]
enum Regulators {
    All,
    HumanTfs,
    Named(Vec<String>),
}

impl Regulators {
    fn from_args(names: Vec<String>, human_tfs: bool) -> Self {
        match (human_tfs, names.is_empty()) {
            (true, _) => Self::HumanTfs,
            (false, true) => Self::All,
            (false, false) => Self::Named(names),
        }
    }
}

/// What an inference for a tool leaves out rather than refusing: constant genes and
/// regulators the data lack (both reported).
fn options(method: Method, seed: u64) -> Options {
    Options {
        method,
        seed,
        drop_constant: true,
        ignore_missing_regulators: true,
        ..Options::default()
    }
}

fn grn_error(e: GrnError) -> ToolError {
    match e {
        GrnError::Cancelled => ToolError::Cancelled,
        e => failed(e.to_string()),
    }
}

/// The sign of an edge as a symbol: `+` activation-like, `-` repression-like.
fn sign(s: i8) -> &'static str {
    match s {
        1 => "+",
        -1 => "-",
        _ => "0",
    }
}

/// Infer a regulatory network from an expression data set.
#[derive(Debug, Clone, Default)]
pub struct InferGrn(pub GrnState);

fn default_top() -> u32 {
    15
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InferGrnArgs {
    /// A data set from load_dataset, simulate_network or run_knockout_screen, a catalogue
    /// data set (`pbmc68k_reduced`), or a path to an .h5ad file.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub dataset: String,
    /// Candidate regulators (gene names); every gene when empty.
    #[serde(default)]
    pub regulators: Vec<String>,
    /// Use the 1,672 human transcription factors as the candidate regulators.
    #[serde(default)]
    #[schemars(extend("x-cues" = cellwright_core::cues::TRANSCRIPTION_FACTORS))]
    pub human_tfs: bool,
    /// `boost` (GRNBoost2, the default), `forest` (GENIE3), `neural`, `pearson`, `spearman`, `random`.
    #[serde(default)]
    pub method: Method,
    /// Edges to list here; the full ranked list is an artifact.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 100))]
    pub top: u32,
    /// Seed of the tree ensembles; the call's own seed when absent.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// One scored edge.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EdgeOut {
    pub regulator: String,
    pub target: String,
    pub score: f64,
    /// Sign of the regulator–target correlation: `+`, `-` or `0`.
    pub sign: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InferGrnOutput {
    pub dataset: String,
    pub method: Method,
    pub cells: usize,
    pub genes: usize,
    pub regulators: usize,
    /// Every regulator → other gene edge is scored.
    pub edges: usize,
    /// The best edges, best first.
    pub top: Vec<EdgeOut>,
    /// Genes left out for being constant across cells.
    pub constant_genes_left_out: usize,
    /// Candidate regulators the data set lacks (left out).
    pub regulators_not_in_data: usize,
    /// The first few of them.
    pub regulators_not_in_data_examples: Vec<String>,
    /// The full ranked list: regulator, target, score (TSV).
    pub edge_list: ArtifactRef,
}

impl Tool for InferGrn {
    const NAME: &'static str = "infer_grn";
    type Args = InferGrnArgs;
    type Output = InferGrnOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/infer_grn.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let dataset = args.dataset.trim().to_owned();
        let (network, cells) = self
            .0
            .infer(
                ctx,
                &dataset,
                Regulators::from_args(args.regulators, args.human_tfs),
                options(args.method, args.seed.unwrap_or(ctx.seed)),
            )
            .await?;
        let edge_list = ctx
            .store_artifact(
                "edge list",
                "text/tab-separated-values",
                &format!(
                    "{} regulator → target edges of {dataset} ranked by {}: regulator, target, score",
                    network.edges.len(),
                    network.method.name()
                ),
                network.to_tsv().into_bytes(),
            )
            .await?;
        let regulators: std::collections::HashSet<usize> =
            network.edges.iter().map(|e| e.regulator).collect();
        Ok(InferGrnOutput {
            dataset,
            method: network.method,
            cells,
            genes: network.genes.len(),
            regulators: regulators.len(),
            edges: network.edges.len(),
            top: network
                .edges
                .iter()
                .take(args.top as usize)
                .map(|e| EdgeOut {
                    regulator: network.genes[e.regulator].clone(),
                    target: network.genes[e.target].clone(),
                    score: e.score,
                    sign: sign(e.sign),
                })
                .collect(),
            constant_genes_left_out: network.dropped_constant.len(),
            regulators_not_in_data: network.missing_regulators.len(),
            regulators_not_in_data_examples: network
                .missing_regulators
                .iter()
                .take(5)
                .cloned()
                .collect(),
            edge_list,
        })
    }
}

/// A gene's top inferred regulators, checked against a reference network.
#[derive(Debug, Clone, Default)]
pub struct ExplainRegulation(pub GrnState);

fn default_regulators() -> u32 {
    10
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRegulationArgs {
    /// The data set infer_grn ran on.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub dataset: String,
    /// The regulated gene.
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-domain" = [cellwright_core::domains::GENE, cellwright_core::domains::MODEL_NODE]))]
    pub target: String,
    #[serde(default = "default_regulators")]
    #[schemars(range(min = 1, max = 50))]
    pub top: u32,
    /// `pathway_commons`, or a catalogue Boolean model; by default the model a simulated data
    /// set came from, else Pathway Commons.
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::BOOLEAN_MODEL))]
    pub reference: Option<String>,
    /// When infer_grn has not run on the data set: infer with the human transcription
    /// factors as candidate regulators (else every gene).
    #[serde(default)]
    #[schemars(extend("x-cues" = cellwright_core::cues::TRANSCRIPTION_FACTORS))]
    pub human_tfs: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RegulatorOut {
    pub regulator: String,
    pub score: f64,
    pub sign: &'static str,
    /// The edge's rank among all inferred edges (1 = best).
    pub rank: usize,
    /// Whether the reference network has this regulator → target edge.
    pub known: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExplainRegulationOutput {
    pub dataset: String,
    pub target: String,
    pub method: Method,
    /// The reference the edges were checked against.
    pub reference: String,
    /// Best first.
    pub regulators: Vec<RegulatorOut>,
    /// How many of them the reference knows.
    pub known: usize,
    /// How many regulators the reference lists for the target in all.
    pub reference_regulators: usize,
}

/// The data set name `simulate_network` and `run_knockout_screen` give: `simulated:MODEL:…`.
fn simulated_model(dataset: &str) -> Option<&str> {
    dataset.strip_prefix("simulated:")?.split(':').next()
}

impl Tool for ExplainRegulation {
    const NAME: &'static str = "explain_regulation";
    type Args = ExplainRegulationArgs;
    type Output = ExplainRegulationOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/explain_regulation.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let dataset = args.dataset.trim().to_owned();
        let kept = self
            .0
            .networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&dataset)
            .cloned();
        let network = match kept {
            Some(n) => n,
            None => {
                let regulators = Regulators::from_args(Vec::new(), args.human_tfs);
                let options = options(Method::default(), ctx.seed);
                self.0.infer(ctx, &dataset, regulators, options).await?.0
            }
        };
        let wanted = args.target.trim();
        let Some(target) = network
            .genes
            .iter()
            .position(|g| g.eq_ignore_ascii_case(wanted))
        else {
            return Err(ToolError::NotFound {
                what: format!("gene of {dataset}"),
                name: wanted.to_owned(),
                suggestions: closest_matches(
                    wanted,
                    network.genes.iter().map(String::as_str),
                    0.7,
                    3,
                ),
            });
        };
        let reference = args
            .reference
            .map(|r| r.trim().to_owned())
            .or_else(|| simulated_model(&dataset).map(str::to_owned))
            .unwrap_or_else(|| "pathway_commons".into());
        let state = self.0.clone();
        let worker = ctx.clone();
        let target_name = network.genes[target].clone();
        let (reference, known_regulators) = off_async(move || {
            if reference == "pathway_commons" {
                let regulons = state.regulons(&worker)?;
                let known: Vec<String> = regulons
                    .regulators_of(&target_name)
                    .map(|v| v.iter().map(|i| i.regulator.to_uppercase()).collect())
                    .unwrap_or_default();
                return Ok(("Pathway Commons".to_owned(), known));
            }
            let (net, source) =
                catalogue::boolean_model(&reference, &*worker.progress, &worker.cancel)?;
            let known = net
                .edges()
                .into_iter()
                .filter(|e| e.to.eq_ignore_ascii_case(&target_name) && e.from != e.to)
                .map(|e| e.from.to_uppercase())
                .collect();
            Ok((source, known))
        })
        .await?;
        let regulators: Vec<RegulatorOut> = network
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.target == target)
            .take(args.top as usize)
            .map(|(rank, e)| {
                let name = &network.genes[e.regulator];
                RegulatorOut {
                    regulator: name.clone(),
                    score: e.score,
                    sign: sign(e.sign),
                    rank: rank + 1,
                    known: known_regulators.contains(&name.to_uppercase()),
                }
            })
            .collect();
        Ok(ExplainRegulationOutput {
            dataset,
            target: network.genes[target].clone(),
            method: network.method,
            reference,
            known: regulators.iter().filter(|r| r.known).count(),
            regulators,
            reference_regulators: known_regulators.len(),
        })
    }
}
