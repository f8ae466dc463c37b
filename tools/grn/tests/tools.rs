//! The gene-regulation tools on cells the simulation tool makes: the edges they rank, the
//! artifact they store, the reference they check against, and their errors.

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_data::load::LoadedDatasets;
use cellwright_grn::Method;
use cellwright_sim::Design;
use cellwright_tools_grn::{
    ExplainRegulation, ExplainRegulationArgs, GrnState, InferGrn, InferGrnArgs,
};
use cellwright_tools_simulate::{SimulateNetwork, SimulateNetworkArgs};

fn infer(dataset: &str, regulators: &[&str]) -> InferGrnArgs {
    InferGrnArgs {
        dataset: dataset.into(),
        regulators: regulators.iter().map(|s| (*s).to_owned()).collect(),
        human_tfs: false,
        method: Method::Boost,
        top: 5,
        seed: Some(1),
    }
}

fn explain(dataset: &str, target: &str) -> ExplainRegulationArgs {
    ExplainRegulationArgs {
        dataset: dataset.into(),
        target: target.into(),
        top: 10,
        reference: None,
        human_tfs: false,
    }
}

#[tokio::test]
async fn inferred_edges_are_ranked_stored_and_explained_against_the_source_model() {
    let ctx = ToolCtx::detached(0);
    let datasets = LoadedDatasets::default();
    let cells = SimulateNetwork(datasets.clone())
        .call(
            &ctx,
            SimulateNetworkArgs {
                model: "krumsiek_myeloid".into(),
                cells: 300,
                knockouts: vec![],
                overexpressed: vec![],
                design: Design::Trajectory,
                duration: 20.0,
                counts: false,
                seed: Some(2),
            },
        )
        .await
        .unwrap();
    let state = GrnState::new(datasets);

    // Before any inference, explain_regulation infers with every gene as a candidate, and
    // checks GATA1's regulators against the model the cells came from.
    let why = ExplainRegulation(state.clone())
        .call(&ctx, explain(&cells.dataset, "gata1"))
        .await
        .unwrap();
    assert_eq!(why.target, "GATA1");
    assert!(
        why.reference.contains("krumsiek_myeloid"),
        "{}",
        why.reference
    );
    assert_eq!(why.regulators.len(), 10);
    assert!(why.regulators.windows(2).all(|w| w[0].rank < w[1].rank));
    // In krumsiek_myeloid, GATA1 = (GATA1 | GATA2 | Fli1) & !PU1; all 10 others are listed.
    assert_eq!(why.reference_regulators, 3);
    let mut known: Vec<&str> = why
        .regulators
        .iter()
        .filter(|r| r.known)
        .map(|r| r.regulator.as_str())
        .collect();
    known.sort_unstable();
    assert_eq!(known, vec!["Fli1", "GATA2", "PU1"]);
    assert_eq!(why.known, 3);

    // infer_grn with named regulators: one the cells lack is left out and reported.
    let out = InferGrn(state.clone())
        .call(
            &ctx,
            infer(&cells.dataset, &["GATA1", "PU1", "CEBPA", "NOPE1"]),
        )
        .await
        .unwrap();
    assert_eq!((out.cells, out.genes, out.regulators), (300, 11, 3));
    assert_eq!(out.edges, 30);
    assert_eq!(out.top.len(), 5);
    assert!(out.top.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(out.regulators_not_in_data, 1);
    assert_eq!(out.regulators_not_in_data_examples, vec!["NOPE1"]);
    let tsv = String::from_utf8(ctx.artifacts.get(&out.edge_list.id).await.unwrap()).unwrap();
    assert!(tsv.starts_with("regulator\ttarget\tscore\n"));
    assert_eq!(tsv.lines().count(), 31);

    // explain_regulation now reads that network: GATA1's candidates are PU1 and CEBPA.
    let why = ExplainRegulation(state.clone())
        .call(&ctx, explain(&cells.dataset, "GATA1"))
        .await
        .unwrap();
    let listed: Vec<(&str, bool)> = why
        .regulators
        .iter()
        .map(|r| (r.regulator.as_str(), r.known))
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&("PU1", true)) && listed.contains(&("CEBPA", false)));

    let err = ExplainRegulation(state.clone())
        .call(&ctx, explain(&cells.dataset, "GATA9"))
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound { suggestions, .. } => {
            assert!(suggestions.contains(&"GATA1".to_owned()), "{suggestions:?}")
        }
        e => panic!("{e:?}"),
    }
    let err = InferGrn(state)
        .call(&ctx, infer("no_such_data", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotFound { .. }), "{err:?}");
}
