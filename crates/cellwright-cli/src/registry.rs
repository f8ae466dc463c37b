//! The tools every `cellwright` command knows.

use std::path::Path;

use cellwright_core::{RegistryError, ToolRegistry};
use cellwright_tools_data::{
    DescribeDataset, GeneSetEnrichment, GeneSetsOf, LoadDataset, LoadedDatasets, NetworkInfo,
};
use cellwright_tools_embed::{AnnotateCells, ClusterCells, EmbedCells, EmbedState, SimilarGenes};
use cellwright_tools_genedb::{
    GeneDbHandle, GenesForTerm, GoTerms, LookupGene, RegulatorsOf, RegulonsHandle, TfTargets,
};
use cellwright_tools_grn::{ExplainRegulation, GrnState, InferGrn};
use cellwright_tools_notebook::{ReadNotes, RecordNote};
use cellwright_tools_perturb::{ComparePerturbations, PerturbState, PredictPerturbation};
use cellwright_tools_sequence::{ReverseComplement, TranslateDna};
use cellwright_tools_simulate::{RunKnockoutScreen, SimulateNetwork};

/// All of the project's tools, in the order the model sees them.
pub fn default_registry(notebook: &Path) -> Result<ToolRegistry, RegistryError> {
    let mut registry = ToolRegistry::new();
    let genes = GeneDbHandle::default();
    let regulons = RegulonsHandle::default();
    let datasets = LoadedDatasets::default();
    // The inferred networks are shared by the two GRN tools; the data sets by every tool.
    let grn = GrnState::new(datasets.clone());
    let embed = EmbedState::new(datasets.clone(), cellwright_tools_embed::default_table());
    // The screens and fitted models are shared by the two perturbation tools.
    let perturb = PerturbState::new(datasets.clone());
    // The gene-set collections, loaded once for enrichment and membership.
    let sets = GeneSetEnrichment::default();
    registry
        .register(TranslateDna)?
        .register(ReverseComplement)?
        .register(LookupGene(genes.clone()))?
        .register(GoTerms(genes.clone()))?
        .register(GenesForTerm(genes))?
        .register(TfTargets(regulons.clone()))?
        .register(RegulatorsOf(regulons))?
        .register(sets.clone())?
        .register(GeneSetsOf(sets))?
        .register(NetworkInfo)?
        .register(LoadDataset(datasets.clone()))?
        .register(DescribeDataset(datasets.clone()))?
        .register(SimulateNetwork(datasets.clone()))?
        .register(RunKnockoutScreen(datasets.clone()))?
        .register(InferGrn(grn.clone()))?
        .register(ExplainRegulation(grn))?
        .register(PredictPerturbation(perturb.clone()))?
        .register(ComparePerturbations(perturb))?
        .register(EmbedCells(embed.clone()))?
        .register(AnnotateCells(embed.clone()))?
        .register(ClusterCells(embed.clone()))?
        .register(SimilarGenes(embed))?
        .register(RecordNote::new(notebook))?
        .register(ReadNotes::new(notebook))?;
    Ok(registry)
}
