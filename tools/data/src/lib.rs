//! # cellwright-tools-data
//!
//! Typed adapters from `cellwright-data` to the [`Tool`] contract: [`GeneSetEnrichment`]
//! (over-representation against the catalogue's gene-set collections), [`GeneSetsOf`] (the
//! sets that hold a gene), [`NetworkInfo`]
//! (nodes, signed edges and attractors of the catalogue's Boolean models), [`LoadDataset`]
//! and [`DescribeDataset`] (expression data: shape, annotations, top and marker genes).
//! Data sets are fetched into the cache on first use.

mod expression;

pub use cellwright_data::load::LoadedDatasets;
pub use expression::{
    DatasetDescription, DatasetSummary, DescribeDataset, DescribeDatasetArgs, LoadDataset,
    LoadDatasetArgs,
};

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cellwright_core::{ArgIssue, Tool, ToolCtx, ToolError, closest_matches};
use cellwright_data::boolean::{BooleanNetwork, Sign};
use cellwright_data::catalogue;
use cellwright_data::genesets::{Collection as GeneSets, Enrichment};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The catalogue's files of `dataset`, fetched on first use.
fn dataset_files(dataset: &str, ctx: &ToolCtx) -> Result<Vec<PathBuf>, ToolError> {
    Ok(catalogue::find(dataset)?.fetch(&*ctx.progress, &ctx.cancel)?)
}

/// Runs `work` on a blocking thread: fetches and whole-state-space searches take seconds,
/// and the async workers must stay free meanwhile.
async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failed(&format!("the tool's work stopped: {e}")))?
}

fn failed(e: &dyn std::fmt::Display) -> ToolError {
    ToolError::Failed {
        message: e.to_string(),
        retryable: false,
    }
}

/// Which gene-set collection to test against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CollectionName {
    /// Canonical pathways, KEGG among them (1,329 sets).
    Pathways,
    /// CORUM protein complexes (2,916).
    Complexes,
    /// GO biological processes (4,828).
    GoBp,
}

impl CollectionName {
    fn file(self) -> &'static str {
        match self {
            CollectionName::Pathways => "pathway.csv",
            CollectionName::Complexes => "corum.csv",
            CollectionName::GoBp => "gobp.csv",
        }
    }
}

/// Over-representation tests against the catalogue's `gene-sets` collections.
#[derive(Debug, Default, Clone)]
pub struct GeneSetEnrichment {
    loaded: Arc<Mutex<HashMap<CollectionName, Arc<GeneSets>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneSetEnrichmentArgs {
    /// Human gene symbols.
    #[schemars(length(min = 2, max = 2000))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub genes: Vec<String>,
    pub collection: CollectionName,
    /// The genes the list was drawn from (default: every gene of the collection).
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::BACKGROUND))]
    pub background: Option<Vec<String>>,
    /// How many sets to return, smallest p first.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 100))]
    pub top: u32,
}

fn default_top() -> u32 {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UnknownGene {
    pub symbol: String,
    /// Symbols of the collection that look like it.
    pub did_you_mean: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GeneSetEnrichmentOutput {
    pub collection: CollectionName,
    pub sets_tested: usize,
    pub background_size: usize,
    pub genes_tested: usize,
    pub unknown_genes: Vec<UnknownGene>,
    pub sets: Vec<Enrichment>,
}

impl GeneSetEnrichment {
    fn collection(&self, name: CollectionName, ctx: &ToolCtx) -> Result<Arc<GeneSets>, ToolError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sets) = loaded.get(&name) {
            return Ok(sets.clone());
        }
        let files = dataset_files("gene-sets", ctx)?;
        let path = files
            .iter()
            .find(|f| f.ends_with(name.file()))
            .ok_or_else(|| failed(&format!("the gene-sets data set has no {}", name.file())))?;
        let sets = Arc::new(GeneSets::read_csv(path, name.file()).map_err(|e| failed(&e))?);
        loaded.insert(name, sets.clone());
        Ok(sets)
    }

    fn run(
        &self,
        args: GeneSetEnrichmentArgs,
        ctx: &ToolCtx,
    ) -> Result<GeneSetEnrichmentOutput, ToolError> {
        let sets = self.collection(args.collection, ctx)?;
        let genes: Vec<String> = args.genes.iter().map(|g| g.trim().to_uppercase()).collect();
        let background = args.background.map(|b| {
            b.iter()
                .map(|g| g.trim().to_uppercase())
                .collect::<Vec<_>>()
        });
        let report = sets.enrich(&genes, background.as_deref());
        if report.query_size == 0 {
            return Err(ToolError::InvalidArgs {
                tool: <Self as Tool>::NAME.into(),
                issues: vec![ArgIssue {
                    path: "/genes".into(),
                    message: format!(
                        "none of the genes is in the background ({} genes)",
                        report.background_size
                    ),
                }],
            });
        }
        let known = sets.genes();
        let unknown_genes = report
            .unknown
            .iter()
            .map(|g| UnknownGene {
                symbol: g.clone(),
                did_you_mean: closest_matches(g, known.iter().copied(), 0.8, 3),
            })
            .collect();
        Ok(GeneSetEnrichmentOutput {
            collection: args.collection,
            sets_tested: report.tested,
            background_size: report.background_size,
            genes_tested: report.query_size,
            unknown_genes,
            sets: report.results.into_iter().take(args.top as usize).collect(),
        })
    }
}

impl Tool for GeneSetEnrichment {
    const NAME: &'static str = "gene_set_enrichment";
    type Args = GeneSetEnrichmentArgs;
    type Output = GeneSetEnrichmentOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/gene_set_enrichment.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let (this, ctx) = (self.clone(), ctx.clone());
        off_async(move || this.run(args, &ctx)).await
    }
}

/// Which sets of the catalogue's `gene-sets` collections hold a gene: its pathways, CORUM
/// complexes and GO biological processes. Shares the collections [`GeneSetEnrichment`] loads.
#[derive(Debug, Default, Clone)]
pub struct GeneSetsOf(pub GeneSetEnrichment);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneSetsOfArgs {
    /// A human gene symbol.
    #[schemars(length(min = 1, max = 40))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub gene: String,
    /// One collection (default: all three).
    #[serde(default)]
    pub collection: Option<CollectionName>,
    /// Most sets listed per collection, smallest first (the most specific).
    #[serde(default = "default_sets_listed")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

fn default_sets_listed() -> u32 {
    25
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetOfGene {
    pub id: String,
    pub name: String,
    /// Genes in the set.
    pub size: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionSets {
    pub collection: CollectionName,
    /// How many sets of the collection hold the gene (more than listed, past the limit).
    pub count: usize,
    pub sets: Vec<SetOfGene>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GeneSetsOfOutput {
    pub gene: String,
    pub collections: Vec<CollectionSets>,
}

impl GeneSetsOf {
    fn run(&self, args: GeneSetsOfArgs, ctx: &ToolCtx) -> Result<GeneSetsOfOutput, ToolError> {
        let gene = args.gene.trim().to_uppercase();
        let names = match args.collection {
            Some(one) => vec![one],
            None => vec![
                CollectionName::Pathways,
                CollectionName::Complexes,
                CollectionName::GoBp,
            ],
        };
        let mut collections = Vec::new();
        let mut known = Vec::new();
        for name in names {
            let sets = self.0.collection(name, ctx)?;
            let mut holding: Vec<SetOfGene> = sets
                .sets
                .iter()
                .filter(|s| s.genes.contains(&gene))
                .map(|s| SetOfGene {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    size: s.genes.len(),
                })
                .collect();
            if holding.is_empty() {
                known.push(sets);
                continue;
            }
            holding.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.id.cmp(&b.id)));
            let count = holding.len();
            holding.truncate(args.limit as usize);
            collections.push(CollectionSets {
                collection: name,
                count,
                sets: holding,
            });
        }
        if collections.is_empty() {
            let genes: BTreeSet<&str> = known.iter().flat_map(|c| c.genes()).collect();
            return Err(ToolError::NotFound {
                what: "gene".into(),
                suggestions: closest_matches(&gene, genes.iter().copied(), 0.8, 3),
                name: gene,
            });
        }
        Ok(GeneSetsOfOutput { gene, collections })
    }
}

impl Tool for GeneSetsOf {
    const NAME: &'static str = "gene_sets_of";
    type Args = GeneSetsOfArgs;
    type Output = GeneSetsOfOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/gene_sets_of.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let (this, ctx) = (self.clone(), ctx.clone());
        off_async(move || this.run(args, &ctx)).await
    }
}

/// The catalogue's Boolean models, by name.
#[derive(Debug, Default, Clone)]
pub struct NetworkInfo;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfoArgs {
    /// The model's name: a pyboolnet model (`faure_cellcycle`) or a Cell Collective model
    /// (`Apoptosis Network`).
    #[schemars(length(min = 1, max = 120))]
    #[schemars(extend("x-domain" = cellwright_core::domains::BOOLEAN_MODEL))]
    pub model: String,
    /// Only this node's regulators (default: every edge).
    #[serde(default)]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::REGULATION))]
    pub node: Option<String>,
    /// Nodes fixed off before the attractors are found.
    #[serde(default)]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::KNOCKOUT))]
    pub knockouts: Vec<String>,
    /// Nodes fixed on before the attractors are found.
    #[serde(default)]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-domain" = cellwright_core::domains::MODEL_NODE))]
    #[schemars(extend("x-cues" = cellwright_core::cues::OVEREXPRESSION))]
    pub overexpressed: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SignedEdge {
    pub from: String,
    pub to: String,
    pub sign: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AttractorSummary {
    /// Steady states (each the nodes that are on) under either update scheme.
    pub steady_states: Vec<Vec<String>>,
    /// Cycles of synchronous updating (each a list of states, as the nodes that are on).
    pub cycles: Vec<Vec<Vec<String>>>,
    /// Attractors of asynchronous updating: how many, and how many of them are steady states.
    pub asynchronous: usize,
    pub asynchronous_steady: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NetworkInfoOutput {
    pub model: String,
    pub source: String,
    pub nodes: Vec<String>,
    /// Nodes whose rule is themselves: the model's inputs.
    pub inputs: Vec<String>,
    pub edges: Vec<SignedEdge>,
    /// Absent for models beyond the state-space limit.
    pub attractors: Option<AttractorSummary>,
    pub note: Option<String>,
}

fn on_nodes(net: &BooleanNetwork, state: u64) -> Vec<String> {
    net.nodes()
        .iter()
        .enumerate()
        .filter(|(i, _)| state >> i & 1 == 1)
        .map(|(_, n)| n.clone())
        .collect()
}

impl NetworkInfo {
    fn run(args: NetworkInfoArgs, ctx: &ToolCtx) -> Result<NetworkInfoOutput, ToolError> {
        let (mut net, source) =
            catalogue::boolean_model(args.model.trim(), &*ctx.progress, &ctx.cancel)?;
        let unknown_node = |name: &str, net: &BooleanNetwork| ToolError::NotFound {
            what: format!("node of {}", args.model),
            name: name.to_owned(),
            suggestions: closest_matches(name, net.nodes().iter().map(String::as_str), 0.8, 3),
        };
        let edges = match &args.node {
            Some(node) => net.regulators(node).map_err(|_| unknown_node(node, &net))?,
            None => net.edges(),
        };
        let edges = edges
            .into_iter()
            .map(|e| SignedEdge {
                from: e.from,
                to: e.to,
                sign: match e.sign {
                    Sign::Activation => "activation",
                    Sign::Inhibition => "inhibition",
                    Sign::Dual => "dual",
                }
                .into(),
            })
            .collect();
        let nodes = net.nodes().to_vec();
        let inputs = (0..net.len())
            .filter(|i| net.is_input(*i))
            .map(|i| nodes[i].clone())
            .collect();
        for (list, value) in [(&args.knockouts, false), (&args.overexpressed, true)] {
            for node in list {
                net = net
                    .with_override(node, value)
                    .map_err(|_| unknown_node(node, &net))?;
            }
        }
        let (attractors, note) = match (net.attractors_sync(), net.attractors_async()) {
            (Ok(sync), Ok(asynchronous)) => (
                Some(AttractorSummary {
                    steady_states: sync
                        .iter()
                        .filter(|a| a.is_fixed_point())
                        .map(|a| on_nodes(&net, a.states[0]))
                        .collect(),
                    cycles: sync
                        .iter()
                        .filter(|a| !a.is_fixed_point())
                        .map(|a| a.states.iter().map(|s| on_nodes(&net, *s)).collect())
                        .collect(),
                    asynchronous: asynchronous.len(),
                    asynchronous_steady: asynchronous.iter().filter(|a| a.is_fixed_point()).count(),
                }),
                None,
            ),
            (Err(e), _) | (_, Err(e)) => (None, Some(e.to_string())),
        };
        Ok(NetworkInfoOutput {
            model: args.model,
            source,
            nodes,
            inputs,
            edges,
            attractors,
            note,
        })
    }
}

impl Tool for NetworkInfo {
    const NAME: &'static str = "network_info";
    type Args = NetworkInfoArgs;
    type Output = NetworkInfoOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/network_info.md")
            .trim()
            .to_owned()
    }

    fn answer_template(&self) -> Option<String> {
        Some(include_str!("../../../prompts/answers/network_info.jinja").to_owned())
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let ctx = ctx.clone();
        off_async(move || Self::run(args, &ctx)).await
    }
}
