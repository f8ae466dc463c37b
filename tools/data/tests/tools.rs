//! The data tools on the catalogue's real files (fetched into the cache on first use).

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_tools_data::{
    CollectionName, DescribeDataset, GeneSetEnrichment, GeneSetEnrichmentArgs, GeneSetsOf,
    GeneSetsOfArgs, LoadDataset, LoadedDatasets, NetworkInfo, NetworkInfoArgs,
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

#[tokio::test]
async fn a_gene_s_sets_are_listed_most_specific_first_per_collection() {
    let ctx = ToolCtx::detached(0);
    let tool = GeneSetsOf::default();
    let out = tool
        .call(
            &ctx,
            GeneSetsOfArgs {
                gene: "psma1".into(),
                collection: None,
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.gene, "PSMA1");
    let names: Vec<CollectionName> = out.collections.iter().map(|c| c.collection).collect();
    assert_eq!(
        names,
        [
            CollectionName::Pathways,
            CollectionName::Complexes,
            CollectionName::GoBp
        ]
    );
    let complexes = &out.collections[1];
    // CORUM lists PSMA1 in eight complexes (read from corum.csv); three are shown, smallest first.
    assert_eq!(complexes.count, 8);
    assert_eq!(complexes.sets.len(), 3);
    assert!(complexes.sets.windows(2).all(|w| w[0].size <= w[1].size));
    let all = tool
        .call(
            &ctx,
            GeneSetsOfArgs {
                gene: "PSMA1".into(),
                collection: Some(CollectionName::Complexes),
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert!(
        all.collections[0]
            .sets
            .iter()
            .any(|s| s.name == "20S proteasome")
    );
    let err = tool
        .call(
            &ctx,
            GeneSetsOfArgs {
                gene: "PSMA".into(),
                collection: None,
                limit: 5,
            },
        )
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound { suggestions, .. } => assert!(suggestions.contains(&"PSMA1".into())),
        other => panic!("{other}"),
    }
}

fn args<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_loaded_data_set_is_described_with_the_markers_biology_expects() {
    let ctx = ToolCtx::detached(0);
    let loaded = LoadedDatasets::default();
    let summary = LoadDataset(loaded.clone())
        .call(&ctx, args(serde_json::json!({"source": "pbmc68k_reduced"})))
        .await
        .unwrap();
    assert_eq!((summary.cells, summary.genes), (700, 765));
    assert_eq!(summary.layers, ["raw"]);
    assert_eq!(summary.embeddings, ["X_pca", "X_umap"]);
    let labels = summary
        .cell_annotations
        .iter()
        .find(|a| a.name == "bulk_labels")
        .unwrap();
    assert_eq!(labels.kind, "categorical");
    assert_eq!(labels.categories.len(), 10);
    let counted: usize = labels.categories.iter().map(|c| c.cells).sum();
    assert_eq!(counted, 700);

    let described = DescribeDataset(loaded.clone())
        .call(
            &ctx,
            args(serde_json::json!({"name": "pbmc68k_reduced", "group_by": "bulk_labels", "top": 10})),
        )
        .await
        .unwrap();
    assert!(
        described.values.starts_with("the raw layer"),
        "{}",
        described.values
    );
    assert_eq!(described.top_expressed.len(), 10);
    assert_eq!(described.most_variable.len(), 10);
    let markers = |group: &str| -> Vec<String> {
        described
            .markers
            .iter()
            .find(|m| m.group == group)
            .unwrap()
            .genes
            .iter()
            .map(|g| g.gene.clone())
            .collect()
    };
    // Textbook markers: B cells carry the CD79 complex, monocytes lysozyme and S100A8/9.
    let b = markers("CD19+ B");
    assert!(
        b.iter().any(|g| g.starts_with("CD79") || g == "MS4A1"),
        "{b:?}"
    );
    let mono = markers("CD14+ Monocyte");
    assert!(
        mono.iter()
            .any(|g| ["LYZ", "S100A8", "S100A9", "FCN1"].contains(&g.as_str())),
        "{mono:?}"
    );

    // A group named instead of its column: that group's markers alone, the same genes.
    let one = DescribeDataset(loaded.clone())
        .call(
            &ctx,
            args(serde_json::json!({"name": "pbmc68k_reduced", "group_by": "cd19+ b cells", "top": 10})),
        )
        .await
        .unwrap();
    assert_eq!(one.markers.len(), 1);
    assert_eq!(one.markers[0].group, "CD19+ B");
    let genes: Vec<String> = one.markers[0]
        .genes
        .iter()
        .map(|g| g.gene.clone())
        .collect();
    assert_eq!(genes, b);
    let held = DescribeDataset(loaded.clone())
        .call(
            &ctx,
            args(serde_json::json!({"name": "pbmc68k_reduced", "group_by": "marker genes of CD19+ B cells"})),
        )
        .await
        .unwrap();
    assert_eq!(held.markers[0].group, "CD19+ B");
    // The start of one group's name names it; the start of several names none.
    let describe = DescribeDataset(loaded.clone());
    let group_by = |name: &str| {
        describe.call(
            &ctx,
            args(serde_json::json!({"name": "pbmc68k_reduced", "group_by": name})),
        )
    };
    assert_eq!(
        group_by("CD56+").await.unwrap().markers[0].group,
        "CD56+ NK"
    );
    assert!(matches!(
        group_by("CD4+").await.unwrap_err(),
        ToolError::NotFound { .. }
    ));

    let err = DescribeDataset(loaded.clone())
        .call(
            &ctx,
            args(serde_json::json!({"name": "pbmc68k_reduced", "group_by": "bulk_label"})),
        )
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound {
            name, suggestions, ..
        } => {
            assert_eq!(name, "bulk_label");
            assert_eq!(suggestions[0], "bulk_labels");
        }
        other => panic!("{other:?}"),
    }
    match LoadDataset(loaded)
        .call(&ctx, args(serde_json::json!({"source": "pbmc68k"})))
        .await
        .unwrap_err()
    {
        ToolError::NotFound { suggestions, .. } => {
            assert!(
                suggestions.contains(&"pbmc68k_reduced".to_owned()),
                "{suggestions:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}
