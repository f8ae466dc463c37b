//! The data tools on the catalogue's real files (fetched into the cache on first use).

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_tools_data::{
    CollectionName, GeneSetEnrichment, GeneSetEnrichmentArgs, NetworkInfo, NetworkInfoArgs,
};

fn network(model: &str, node: Option<&str>, knockouts: &[&str]) -> NetworkInfoArgs {
    NetworkInfoArgs {
        model: model.into(),
        node: node.map(Into::into),
        knockouts: knockouts.iter().map(|s| (*s).to_owned()).collect(),
        overexpressed: vec![],
    }
}

#[tokio::test]
async fn the_cell_cycle_model_has_the_published_attractors() {
    let ctx = ToolCtx::detached(0);
    let out = NetworkInfo
        .call(&ctx, network("faure_cellcycle", Some("CycE"), &[]))
        .await
        .unwrap();
    assert_eq!(out.nodes.len(), 10);
    assert_eq!(out.inputs, ["CycD"]);
    let regulators: Vec<(&str, &str)> = out
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.sign.as_str()))
        .collect();
    assert_eq!(regulators, [("E2F", "activation"), ("Rb", "inhibition")]);
    // Faure et al. 2006: without CycD a single steady state; with it, a cycle of 7 states
    // under synchronous updating.
    let attractors = out.attractors.unwrap();
    assert_eq!(attractors.steady_states.len(), 1);
    assert!(!attractors.steady_states[0].contains(&"CycD".to_owned()));
    assert_eq!(attractors.cycles.len(), 1);
    assert_eq!(attractors.cycles[0].len(), 7);
    // Knocking CycD out leaves only the steady state.
    let out = NetworkInfo
        .call(&ctx, network("faure_cellcycle", None, &["CycD"]))
        .await
        .unwrap();
    let attractors = out.attractors.unwrap();
    assert_eq!(
        (attractors.steady_states.len(), attractors.cycles.len()),
        (1, 0)
    );
}

#[tokio::test]
async fn unknown_models_and_nodes_come_back_with_close_names() {
    let ctx = ToolCtx::detached(0);
    let err = NetworkInfo
        .call(&ctx, network("faure_cellcycl", None, &[]))
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound { suggestions, .. } => {
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("faure_cellcycle")
            );
        }
        other => panic!("{other}"),
    }
    let err = NetworkInfo
        .call(&ctx, network("faure_cellcycle", Some("CycEE"), &[]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CycE"), "{err}");
}

#[tokio::test]
async fn enrichment_finds_the_pathway_and_names_unknown_genes() {
    let ctx = ToolCtx::detached(0);
    let args = GeneSetEnrichmentArgs {
        genes: ["HK1", "pfkm", "GAPDH", "ENO1", "PGK1", "TPI1", "GAPDHH"]
            .map(String::from)
            .to_vec(),
        collection: CollectionName::Pathways,
        background: None,
        top: 3,
    };
    let out = GeneSetEnrichment::default().call(&ctx, args).await.unwrap();
    assert!(
        out.sets[0].name.contains("GLYCOLYSIS"),
        "{}",
        out.sets[0].name
    );
    assert!(
        out.sets
            .iter()
            .any(|s| s.name == "KEGG_GLYCOLYSIS_GLUCONEOGENESIS")
    );
    assert!(out.sets[0].q < 1e-6, "{}", out.sets[0].q);
    assert_eq!(out.sets.len(), 3);
    assert_eq!(out.genes_tested, 6);
    assert_eq!(out.unknown_genes[0].symbol, "GAPDHH");
    assert_eq!(out.unknown_genes[0].did_you_mean[0], "GAPDH");

    let none = GeneSetEnrichmentArgs {
        genes: vec!["NOPE1".into(), "NOPE2".into()],
        collection: CollectionName::Complexes,
        background: None,
        top: 10,
    };
    let err = GeneSetEnrichment::default()
        .call(&ctx, none)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs { .. }), "{err}");
}
