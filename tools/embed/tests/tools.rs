//! The representation tools on pbmc68k_reduced and the knowledge-text gene table: what they
//! return, the artifacts they store, and their errors.

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_data::load::LoadedDatasets;
use cellwright_tools_embed::{
    AnnotateCells, AnnotateCellsArgs, CellMethod, ClusterAlgorithm, ClusterCells, ClusterCellsArgs,
    EmbedCells, EmbedCellsArgs, EmbedState, SimilarGenes, SimilarGenesArgs,
};

fn cluster(algorithm: ClusterAlgorithm) -> ClusterCellsArgs {
    ClusterCellsArgs {
        dataset: "pbmc68k_reduced".into(),
        method: CellMethod::Pca,
        algorithm,
        resolution: 1.0,
        clusters: 10,
        label_column: None,
    }
}

async fn artifact(ctx: &ToolCtx, r: &cellwright_core::ArtifactRef) -> String {
    String::from_utf8(ctx.artifacts.get(&r.id).await.unwrap()).unwrap()
}

#[tokio::test]
async fn cells_are_embedded_labelled_and_clustered() {
    let ctx = ToolCtx::detached(0);
    let dir = tempfile::tempdir().unwrap();
    let state = EmbedState::new(
        LoadedDatasets::default(),
        dir.path().join("genes.safetensors"),
    );

    let e = EmbedCells(state.clone())
        .call(
            &ctx,
            EmbedCellsArgs {
                dataset: "pbmc68k_reduced".into(),
                method: CellMethod::Pca,
                layer: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((e.cells, e.dimension), (700, 50));
    assert!(
        e.notes.iter().any(|n| n.contains("`raw` layer")),
        "{:?}",
        e.notes
    );
    let csv = artifact(&ctx, &e.embedding).await;
    assert_eq!(csv.lines().count(), 701);
    assert!(csv.starts_with("cell,dim0,dim1,"));

    // Each cell labelled from the others: its own label is among 15 votes, so agreement is
    // high but not perfect (bulk_labels has mixed T cell types).
    let a = AnnotateCells(state.clone())
        .call(
            &ctx,
            AnnotateCellsArgs {
                reference: "pbmc68k_reduced".into(),
                query: "pbmc68k_reduced".into(),
                label_column: Some("bulk_labels".into()),
                method: CellMethod::Pca,
                k: 15,
            },
        )
        .await
        .unwrap();
    assert_eq!(a.summary.iter().map(|c| c.cells).sum::<usize>(), 700);
    assert!(a.summary.windows(2).all(|w| w[0].cells >= w[1].cells));
    let agreement = a.agreement_with_query_labels.unwrap();
    assert!((0.6..1.0).contains(&agreement), "{agreement}");
    let labels = artifact(&ctx, &a.labels).await;
    assert!(labels.starts_with("cell,label,confidence\n"));
    assert_eq!(labels.lines().count(), 701);

    // Leiden finds the cell types in part; k-means makes exactly the clusters asked for.
    let leiden = ClusterCells(state.clone())
        .call(&ctx, cluster(ClusterAlgorithm::Leiden))
        .await
        .unwrap();
    assert_eq!(leiden.label_column.as_deref(), Some("bulk_labels"));
    assert!(
        leiden.ari.unwrap() > 0.2 && leiden.nmi.unwrap() > 0.3,
        "{leiden:?}"
    );
    assert_eq!(leiden.clusters.iter().map(|c| c.cells).sum::<usize>(), 700);
    assert!(leiden.clusters.windows(2).all(|w| w[0].cells >= w[1].cells));
    let assignments = artifact(&ctx, &leiden.assignments).await;
    assert!(assignments.starts_with("cell,cluster,umap_1,umap_2\n"));
    assert!(
        artifact(&ctx, &leiden.plot)
            .await
            .matches("<circle")
            .count()
            >= 700
    );
    let kmeans = ClusterCells(state.clone())
        .call(&ctx, cluster(ClusterAlgorithm::Kmeans))
        .await
        .unwrap();
    assert_eq!(kmeans.clusters.len(), 10);

    // Bad input is named.
    let err = AnnotateCells(state.clone())
        .call(
            &ctx,
            AnnotateCellsArgs {
                reference: "pbmc68k_reduced".into(),
                query: "pbmc68k_reduced".into(),
                label_column: Some("cell_kind".into()),
                method: CellMethod::Pca,
                k: 15,
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no obs column `cell_kind` (it has: "),
        "{err}"
    );
    let err = ClusterCells(state)
        .call(
            &ctx,
            ClusterCellsArgs {
                dataset: "pbmc_68k".into(),
                ..cluster(ClusterAlgorithm::Leiden)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn similar_genes_searches_the_table_and_names_unknown_genes() {
    let ctx = ToolCtx::detached(0);
    let dir = tempfile::tempdir().unwrap();
    let state = EmbedState::new(
        LoadedDatasets::default(),
        dir.path().join("genes.safetensors"),
    );
    let tool = SimilarGenes(state);
    let similar = |gene: &str| {
        tool.call(
            &ctx,
            SimilarGenesArgs {
                gene: gene.into(),
                top: 3,
            },
        )
    };
    // Each call adds its gene to the table; proteasome subunits come out nearest each other.
    for gene in ["GAPDH", "PSMA2", "CD19", "PSMB5"] {
        similar(gene).await.unwrap();
    }
    let out = similar("psma1").await.unwrap();
    assert_eq!(out.gene, "PSMA1");
    assert_eq!(out.searched_genes, 5);
    assert!(out.note.unwrap().contains("only 5 genes"));
    let near: Vec<&str> = out.nearest.iter().map(|g| g.gene.as_str()).collect();
    assert_eq!(near.len(), 3);
    let mut top2 = near[..2].to_vec();
    top2.sort_unstable();
    assert_eq!(top2, ["PSMA2", "PSMB5"], "{:?}", out.nearest);
    assert!(
        out.nearest
            .windows(2)
            .all(|w| w[0].similarity >= w[1].similarity)
    );

    let err = similar("NOTAGENE1").await.unwrap_err();
    assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
}
