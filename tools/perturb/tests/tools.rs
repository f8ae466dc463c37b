//! The perturbation tools on a catalogue model's simulated screen and on a screen the
//! simulation tool makes: the changes they predict, the paths behind them, the comparison,
//! the kept models, and their errors.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cellwright_core::{CancelToken, NoProgress, Tool, ToolCtx, ToolError};
use cellwright_data::load::LoadedDatasets;
use cellwright_perturb::{Direction, Method};
use cellwright_tools_perturb::{
    ComparePerturbations, ComparePerturbationsArgs, PerturbState, PerturbationArg,
    PredictPerturbation, PredictPerturbationArgs,
};
use cellwright_tools_simulate::{RunKnockoutScreen, RunKnockoutScreenArgs};

const MODEL: &str = "krumsiek_myeloid";

#[tokio::test]
async fn a_knockout_changes_other_genes_along_learned_paths_and_is_compared() {
    let ctx = ToolCtx::detached(0);
    let state = PerturbState::default();
    let tool = PredictPerturbation(state.clone());
    let out = tool
        .call(&ctx, PredictPerturbationArgs::knockout(MODEL, &["gata1"]))
        .await
        .unwrap();
    assert_eq!(out.perturbation, "GATA1 KO");
    assert_eq!(out.model, Method::Ensemble);
    assert!(out.data.contains("krumsiek_myeloid"), "{}", out.data);
    // Every single knockout is in the simulated screen, so the observed change is beside
    // each prediction.
    assert!(out.measured);
    assert!(!out.changes.is_empty() && out.changes.len() <= 10);
    assert!(out.changes.iter().all(|c| c.gene != "GATA1"));
    assert!(
        out.changes
            .windows(2)
            .all(|w| w[0].predicted.abs() >= w[1].predicted.abs())
    );
    assert!(out.changes.iter().all(|c| c.observed.is_some()));
    // The ensemble includes the mechanistic model, so every gene has a path entry; in
    // krumsiek_myeloid GATA1 regulates most of the network, so some paths start at it.
    assert!(out.changes.iter().all(|c| c.path.is_some()));
    let paths: Vec<String> = out
        .changes
        .iter()
        .filter_map(|c| c.path.clone().flatten())
        .collect();
    assert!(paths.iter().any(|p| p.starts_with("GATA1 ")), "{paths:?}");
    assert!(
        out.summary.starts_with("GATA1 KO (ensemble): "),
        "{}",
        out.summary
    );

    // The fitted model is kept: asking again gives the same one, without refitting.
    let cancel = CancelToken::new();
    let first = state
        .model(MODEL, Method::Ensemble, 0, &NoProgress, &cancel)
        .unwrap();
    let again = state
        .model(MODEL, Method::Ensemble, 0, &NoProgress, &cancel)
        .unwrap();
    assert!(Arc::ptr_eq(&first, &again));

    // A model without a network has no paths; overexpression is a direction of its own.
    let mut linear = PredictPerturbationArgs::knockout(MODEL, &["PU1"]);
    linear.model = Method::Linear;
    linear.direction = Direction::Overexpression;
    linear.top = 3;
    let out = tool.call(&ctx, linear).await.unwrap();
    assert_eq!(out.perturbation, "PU1 OE");
    assert!(out.changes.len() <= 3);
    assert!(out.changes.iter().all(|c| c.path.is_none()));

    // Two knockouts side by side.
    let compare = ComparePerturbations(state);
    let args = ComparePerturbationsArgs {
        data: MODEL.into(),
        a: PerturbationArg::knockout(&["GATA1"]),
        b: PerturbationArg::knockout(&["PU1"]),
        model: Method::Ensemble,
        top: 5,
        seed: None,
    };
    let out = compare.call(&ctx, args).await.unwrap();
    assert_eq!((out.a.as_str(), out.b.as_str()), ("GATA1 KO", "PU1 KO"));
    assert!(!out.genes.is_empty() && out.genes.len() <= 5);
    for d in &out.genes {
        assert!(d.gene != "GATA1" && d.gene != "PU1");
        assert!(
            (d.delta_a - d.delta_b - d.difference).abs() < 0.0025,
            "{d:?}"
        );
    }
    assert!(
        out.genes
            .windows(2)
            .all(|w| w[0].difference.abs() >= w[1].difference.abs())
    );
    assert!(
        out.summary.starts_with("GATA1 KO vs PU1 KO (ensemble): "),
        "{}",
        out.summary
    );
}

#[tokio::test]
async fn a_screen_the_simulation_tool_made_can_be_predicted_from() {
    let ctx = ToolCtx::detached(0);
    let datasets = LoadedDatasets::default();
    let screen = RunKnockoutScreen(datasets.clone())
        .call(
            &ctx,
            RunKnockoutScreenArgs {
                model: MODEL.into(),
                singles: vec![],
                pairs: 6,
                cells_per_perturbation: 40,
                counts: true,
                seed: Some(3),
            },
        )
        .await
        .unwrap();
    let tool = PredictPerturbation(PerturbState::new(datasets));
    let mut args = PredictPerturbationArgs::knockout(&screen.dataset, &["PU1", "GATA1"]);
    args.model = Method::Additive;
    let out = tool.call(&ctx, args).await.unwrap();
    assert_eq!(out.perturbation, "GATA1 KO + PU1 KO");
    assert!(out.data.starts_with(&screen.dataset), "{}", out.data);
    assert!(!out.changes.is_empty());
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let ctx = ToolCtx::detached(0);
    let tool = PredictPerturbation(PerturbState::default());
    let mut fast = PredictPerturbationArgs::knockout(MODEL, &["GATA9"]);
    fast.model = Method::TrainMean;
    match tool.call(&ctx, fast).await {
        Err(ToolError::NotFound {
            what,
            name,
            suggestions,
        }) => {
            assert_eq!(what, "gene of krumsiek_myeloid");
            assert_eq!(name, "GATA9");
            assert!(suggestions.contains(&"GATA1".to_owned()), "{suggestions:?}");
        }
        other => panic!("{other:?}"),
    }
    for (genes, path) in [
        (vec![], "/genes"),
        (vec!["PU1", "pu1"], "/genes/1"),
        (vec![" "], "/genes/0"),
    ] {
        let args = PredictPerturbationArgs::knockout(MODEL, &genes);
        match tool.call(&ctx, args).await {
            Err(ToolError::InvalidArgs { issues, .. }) => assert_eq!(issues[0].path, path),
            other => panic!("{genes:?}: {other:?}"),
        }
    }
    match tool
        .call(
            &ctx,
            PredictPerturbationArgs::knockout("krumsiek_myeloi", &["PU1"]),
        )
        .await
    {
        Err(ToolError::NotFound {
            name, suggestions, ..
        }) => {
            assert_eq!(name, "krumsiek_myeloi");
            assert!(suggestions.contains(&MODEL.to_owned()), "{suggestions:?}");
        }
        other => panic!("{other:?}"),
    }
    let compare = ComparePerturbations(PerturbState::default());
    let same = ComparePerturbationsArgs {
        data: MODEL.into(),
        a: PerturbationArg::knockout(&["PU1"]),
        b: PerturbationArg::knockout(&["pu1"]),
        model: Method::NoChange,
        top: 5,
        seed: None,
    };
    match compare.call(&ctx, same).await {
        Err(ToolError::InvalidArgs { issues, .. }) => assert_eq!(issues[0].path, "/b"),
        other => panic!("{other:?}"),
    }
    let cancelled = ToolCtx::detached(0);
    cancelled.cancel.cancel();
    assert!(matches!(
        tool.call(
            &cancelled,
            PredictPerturbationArgs::knockout(MODEL, &["PU1"])
        )
        .await,
        Err(ToolError::Cancelled)
    ));
}
