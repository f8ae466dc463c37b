//! # cellwright-tools-genedb
//!
//! Typed adapters from [`cellwright_data::genedb`] to the [`Tool`] contract: [`LookupGene`],
//! [`GoTerms`] and [`GenesForTerm`]. They share one [`GeneDbHandle`]: the catalogue's
//! `org.Hs.eg.db` and `GO.db`, fetched on first use and opened read-only.
//!
//! [`TfTargets`] and [`RegulatorsOf`] answer from [`cellwright_data::regulons`] through one
//! [`RegulonsHandle`]: the catalogue's `pathway-commons-regulons`, fetched and read on first
//! use.

use std::sync::Arc;

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_data::catalogue;
use cellwright_data::genedb::{Annotation, Aspect, Gene, GeneDb, GeneDbError, TermGenes};
use cellwright_data::regulons::{RegulonError, Regulons};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// The one file of catalogue data set `name`, fetched if need be. It blocks (a package client
/// may run for minutes): call it off the async workers.
fn catalogue_file(name: &str, ctx: &ToolCtx) -> Result<std::path::PathBuf, ToolError> {
    Ok(catalogue::find(name)?.fetch_file("", &*ctx.progress, &ctx.cancel)?)
}

/// The gene databases, opened on first use and shared by the tools.
#[derive(Debug, Clone, Default)]
pub struct GeneDbHandle(Arc<OnceCell<GeneDb>>);

impl GeneDbHandle {
    async fn get(&self, ctx: &ToolCtx) -> Result<&GeneDb, ToolError> {
        self.0
            .get_or_try_init(|| async {
                // Fetching runs package clients for up to minutes: not on an async worker.
                let ctx = ctx.clone();
                let paths = tokio::task::spawn_blocking(move || {
                    ["org.Hs.eg.db", "GO.db"].map(|name| catalogue_file(name, &ctx))
                })
                .await
                .map_err(|e| ToolError::Failed {
                    message: format!("fetching the gene databases stopped: {e}"),
                    retryable: true,
                })?;
                let [org, go] = paths;
                let (org, go) = (org?, go?);
                GeneDb::open(&org, &go).await.map_err(tool_error)
            })
            .await
    }
}

fn tool_error(e: GeneDbError) -> ToolError {
    match e {
        GeneDbError::UnknownGene { query, suggestions } => ToolError::NotFound {
            what: "human gene".into(),
            name: query,
            suggestions,
        },
        GeneDbError::UnknownTerm { query, suggestions } => ToolError::NotFound {
            what: "GO term".into(),
            name: query,
            suggestions,
        },
        other => ToolError::Failed {
            message: other.to_string(),
            retryable: false,
        },
    }
}

/// `lookup_gene`.
#[derive(Debug, Clone, Default)]
pub struct LookupGene(pub GeneDbHandle);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupGeneArgs {
    /// An official symbol (TP53), an alias (LFS1) or an Entrez Gene id (7157).
    #[schemars(length(min = 1, max = 40))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub query: String,
}

impl Tool for LookupGene {
    const NAME: &'static str = "lookup_gene";
    type Args = LookupGeneArgs;
    type Output = Gene;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/lookup_gene.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let db = self.0.get(ctx).await?;
        db.lookup(&args.query).await.map_err(tool_error)
    }
}

/// Which GO aspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AspectChoice {
    BiologicalProcess,
    MolecularFunction,
    CellularComponent,
    All,
}

/// `go_terms`.
#[derive(Debug, Clone, Default)]
pub struct GoTerms(pub GeneDbHandle);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoTermsArgs {
    /// A symbol, alias or Entrez id.
    #[schemars(length(min = 1, max = 40))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub gene: String,
    pub aspect: AspectChoice,
    /// At most this many terms, the best supported first (default 40).
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GoTermsOutput {
    pub gene: String,
    /// How many terms it has in the aspect, in all.
    pub count: usize,
    /// The best supported first: experimental evidence (EXP, IDA, IMP, …), then curated
    /// statements (TAS, IC), inferences from related genes (IBA, ISS, …), author statements
    /// (NAS) and electronic annotation (IEA); then by how many kinds of evidence, and id.
    pub terms: Vec<Annotation>,
}

/// How strongly an evidence code supports an annotation: 0 is strongest.
fn evidence_tier(code: &str) -> u8 {
    match code {
        "EXP" | "IDA" | "IPI" | "IMP" | "IGI" | "IEP" | "HTP" | "HDA" | "HMP" | "HGI" | "HEP" => 0,
        "TAS" | "IC" => 1,
        "IBA" | "IBD" | "IKR" | "IRD" | "ISS" | "ISO" | "ISA" | "ISM" | "IGC" | "RCA" => 2,
        "NAS" => 3,
        "IEA" => 4,
        _ => 5,
    }
}

/// `terms`, the best supported first (as [`GoTermsOutput::terms`]).
fn best_supported(mut terms: Vec<Annotation>) -> Vec<Annotation> {
    let tier = |a: &Annotation| {
        a.evidence
            .iter()
            .map(|c| evidence_tier(c))
            .min()
            .unwrap_or(5)
    };
    terms.sort_by(|a, b| {
        tier(a)
            .cmp(&tier(b))
            .then(b.evidence.len().cmp(&a.evidence.len()))
            .then_with(|| a.go_id.cmp(&b.go_id))
    });
    terms
}

impl Tool for GoTerms {
    const NAME: &'static str = "go_terms";
    type Args = GoTermsArgs;
    type Output = GoTermsOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/go_terms.md")
            .trim()
            .to_owned()
    }

    fn answer_template(&self) -> Option<String> {
        Some(include_str!("../../../prompts/answers/go_terms.jinja").to_owned())
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let db = self.0.get(ctx).await?;
        let aspects: &[Aspect] = match args.aspect {
            AspectChoice::BiologicalProcess => &[Aspect::BiologicalProcess],
            AspectChoice::MolecularFunction => &[Aspect::MolecularFunction],
            AspectChoice::CellularComponent => &[Aspect::CellularComponent],
            AspectChoice::All => &Aspect::ALL,
        };
        let (gene, terms) = db.go_terms(&args.gene, aspects).await.map_err(tool_error)?;
        let limit = args.limit.map_or(40, |n| n as usize);
        Ok(GoTermsOutput {
            gene: gene.symbol,
            count: terms.len(),
            terms: best_supported(terms).into_iter().take(limit).collect(),
        })
    }
}

/// `genes_for_term`.
#[derive(Debug, Clone, Default)]
pub struct GenesForTerm(pub GeneDbHandle);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenesForTermArgs {
    /// A GO id (GO:0006096) or a term's exact name (glycolytic process).
    #[schemars(length(min = 3, max = 200))]
    pub term: String,
}

impl Tool for GenesForTerm {
    const NAME: &'static str = "genes_for_term";
    type Args = GenesForTermArgs;
    type Output = TermGenes;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/genes_for_term.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let db = self.0.get(ctx).await?;
        db.genes_for_term(&args.term).await.map_err(tool_error)
    }
}

/// The Pathway Commons regulons, read on first use and shared by the tools.
#[derive(Debug, Clone, Default)]
pub struct RegulonsHandle(Arc<OnceCell<Regulons>>);

impl RegulonsHandle {
    async fn get(&self, ctx: &ToolCtx) -> Result<&Regulons, ToolError> {
        self.0
            .get_or_try_init(|| async {
                // Fetching runs a package client and reading parses 1.6 MB: not on an async
                // worker.
                let ctx = ctx.clone();
                tokio::task::spawn_blocking(move || {
                    let path = catalogue_file("pathway-commons-regulons", &ctx)?;
                    Regulons::read(&path).map_err(regulon_error)
                })
                .await
                .map_err(|e| ToolError::Failed {
                    message: format!("reading the regulons stopped: {e}"),
                    retryable: true,
                })?
            })
            .await
    }
}

fn regulon_error(e: RegulonError) -> ToolError {
    match e {
        RegulonError::UnknownRegulator { query, suggestions } => ToolError::NotFound {
            what: "regulator".into(),
            name: query,
            suggestions,
        },
        RegulonError::UnknownTarget { query, suggestions } => ToolError::NotFound {
            what: "regulated gene".into(),
            name: query,
            suggestions,
        },
        other => ToolError::Failed {
            message: other.to_string(),
            retryable: false,
        },
    }
}

/// `tf_targets`.
#[derive(Debug, Clone, Default)]
pub struct TfTargets(pub RegulonsHandle);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TfTargetsArgs {
    /// The regulator's official symbol (TP53).
    #[schemars(length(min = 1, max = 40))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub tf: String,
    /// At most this many targets, alphabetically (default 200).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TfTargetsOutput {
    pub tf: String,
    /// How many targets it has in all.
    pub count: usize,
    /// Target symbols, sorted ignoring case; at most `limit`.
    pub targets: Vec<String>,
    /// The Pathway Commons interaction types of these edges (`controls-expression-of`).
    pub interaction_types: Vec<String>,
}

impl Tool for TfTargets {
    const NAME: &'static str = "tf_targets";
    type Args = TfTargetsArgs;
    type Output = TfTargetsOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/tf_targets.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let regulons = self.0.get(ctx).await?;
        let edges = regulons.targets_of(&args.tf).map_err(regulon_error)?;
        let limit = args.limit.map_or(200, |n| n as usize);
        Ok(TfTargetsOutput {
            tf: edges
                .first()
                .map_or_else(|| args.tf.clone(), |e| e.regulator.clone()),
            count: edges.len(),
            targets: edges.iter().take(limit).map(|e| e.target.clone()).collect(),
            interaction_types: kinds(edges.iter().map(|e| e.kind.as_str())),
        })
    }
}

fn kinds<'a>(kinds: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = kinds.collect();
    set.into_iter().map(str::to_owned).collect()
}

/// `regulators_of`.
#[derive(Debug, Clone, Default)]
pub struct RegulatorsOf(pub RegulonsHandle);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegulatorsOfArgs {
    /// The regulated gene's official symbol (CDKN1A).
    #[schemars(length(min = 1, max = 40))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub gene: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RegulatorsOfOutput {
    pub gene: String,
    pub count: usize,
    /// Regulator symbols, sorted ignoring case.
    pub regulators: Vec<String>,
    /// The Pathway Commons interaction types of these edges (`controls-expression-of`).
    pub interaction_types: Vec<String>,
}

impl Tool for RegulatorsOf {
    const NAME: &'static str = "regulators_of";
    type Args = RegulatorsOfArgs;
    type Output = RegulatorsOfOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/regulators_of.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let regulons = self.0.get(ctx).await?;
        let edges = regulons.regulators_of(&args.gene).map_err(regulon_error)?;
        Ok(RegulatorsOfOutput {
            gene: edges
                .first()
                .map_or_else(|| args.gene.clone(), |e| e.target.clone()),
            count: edges.len(),
            regulators: edges.iter().map(|e| e.regulator.clone()).collect(),
            interaction_types: kinds(edges.iter().map(|e| e.kind.as_str())),
        })
    }
}
