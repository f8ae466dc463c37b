//! The simulation tools end to end on a catalogue model: the cells they keep, the artifacts
//! they store, and their errors.

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_data::h5ad;
use cellwright_sim::Design;
use cellwright_tools_data::{DescribeDataset, DescribeDatasetArgs, LoadedDatasets};
use cellwright_tools_simulate::{
    RunKnockoutScreen, RunKnockoutScreenArgs, SimulateNetwork, SimulateNetworkArgs,
};

fn simulate(knockouts: &[&str], counts: bool) -> SimulateNetworkArgs {
    SimulateNetworkArgs {
        model: "krumsiek_myeloid".into(),
        cells: 120,
        knockouts: knockouts.iter().map(|s| (*s).to_owned()).collect(),
        overexpressed: vec![],
        design: Design::SteadyState,
        duration: 20.0,
        counts,
        seed: Some(4),
    }
}

#[tokio::test]
async fn simulated_cells_are_kept_for_describe_dataset_and_stored_as_h5ad() {
    let ctx = ToolCtx::detached(0);
    let datasets = LoadedDatasets::default();
    let out = SimulateNetwork(datasets.clone())
        .call(&ctx, simulate(&["PU1"], true))
        .await
        .unwrap();
    assert_eq!((out.cells, out.genes, out.seed), (120, 11, 4));
    assert_eq!(out.groups.len(), 1);
    assert_eq!(out.groups[0].perturbation, "PU1 KO");
    assert!(!out.groups[0].mostly_on.contains(&"PU1".to_owned()));

    // The matrix artifact is an .h5ad of the same cells, counts in X and levels as a layer.
    let bytes = ctx.artifacts.get(&out.matrix.id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.h5ad");
    std::fs::write(&path, bytes).unwrap();
    let m = h5ad::read(&path).unwrap();
    assert_eq!(m.shape(), (120, 11));
    assert!(m.layers.contains_key("mrna"));
    let network = String::from_utf8(ctx.artifacts.get(&out.network.id).await.unwrap()).unwrap();
    assert!(network.starts_with("regulator\ttarget\tsign\n"));
    assert!(network.contains("GATA1\tPU1\tinhibition\n"), "{network}");

    // describe_dataset finds the cells under the returned name.
    let described = DescribeDataset(datasets)
        .call(
            &ctx,
            DescribeDatasetArgs {
                name: out.dataset.clone(),
                group_by: Some("perturbation".into()),
                top: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(described.summary.cells, 120);
}

#[tokio::test]
async fn a_screen_has_a_control_the_singles_and_the_pairs() {
    let ctx = ToolCtx::detached(0);
    let out = RunKnockoutScreen(LoadedDatasets::default())
        .call(
            &ctx,
            RunKnockoutScreenArgs {
                model: "krumsiek_myeloid".into(),
                singles: vec!["PU1".into(), "GATA1".into(), "CEBPA".into()],
                pairs: 2,
                cells_per_perturbation: 20,
                counts: false,
                seed: Some(1),
            },
        )
        .await
        .unwrap();
    let labels: Vec<&str> = out.groups.iter().map(|g| g.perturbation.as_str()).collect();
    assert_eq!(labels.len(), 6, "{labels:?}");
    assert_eq!(&labels[..4], ["control", "PU1 KO", "GATA1 KO", "CEBPA KO"]);
    assert!(
        labels[4..].iter().all(|l| l.matches(" KO").count() == 2),
        "{labels:?}"
    );
    assert_eq!(out.cells, 120);
}

#[tokio::test]
async fn bad_requests_are_errors_the_model_can_act_on() {
    let ctx = ToolCtx::detached(0);
    let tool = SimulateNetwork(LoadedDatasets::default());
    match tool.call(&ctx, simulate(&["PU.1"], false)).await {
        Err(ToolError::NotFound {
            name, suggestions, ..
        }) => {
            assert_eq!(name, "PU.1");
            assert_eq!(suggestions, ["PU1"]);
        }
        other => panic!("{other:?}"),
    }
    let mut unknown = simulate(&[], false);
    unknown.model = "krumsiek_myeloi".into();
    match tool.call(&ctx, unknown).await {
        Err(ToolError::NotFound { suggestions, .. }) => {
            assert!(
                suggestions.contains(&"krumsiek_myeloid".to_owned()),
                "{suggestions:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let screen = RunKnockoutScreen(LoadedDatasets::default());
    let too_many = RunKnockoutScreenArgs {
        model: "raf".into(),
        singles: vec![],
        pairs: 10,
        cells_per_perturbation: 5,
        counts: false,
        seed: None,
    };
    match screen.call(&ctx, too_many).await {
        Err(ToolError::Failed { message, .. }) => assert!(message.contains("pairs"), "{message}"),
        other => panic!("{other:?}"),
    }
    let cancelled = ToolCtx::detached(0);
    cancelled.cancel.cancel();
    assert!(matches!(
        tool.call(&cancelled, simulate(&[], false)).await,
        Err(ToolError::Cancelled)
    ));
}
