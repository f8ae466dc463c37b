//! `cellwright perturb train|predict`: scores per category and the learned rules on a
//! simulated screen, predictions with their paths from a model name or an .h5ad screen, and
//! clear errors.

use serde_json::Value;

use crate::support::*;

const MODEL: &str = "krumsiek_myeloid";

/// `cellwright perturb ARGS…` with the shared catalogue cache.
async fn perturb(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .arg("perturb")
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn perturb_train_scores_every_model_per_category_and_prints_the_rules() {
    let sb = Sandbox::new();
    let json = sb.dir.path().join("out/train.json");
    let out = perturb(
        &sb,
        &[
            "train",
            MODEL,
            "--split-seed",
            "1",
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("11 genes, 22 single and 40 combined"),
        "{text}"
    );
    assert!(
        text.contains("r-top20") && text.contains("learned rules"),
        "{text}"
    );
    for method in [
        "ensemble",
        "mechanistic",
        "linear",
        "additive",
        "train_mean",
        "no_change",
    ] {
        assert!(text.contains(&format!(" {method} ")), "{method}: {text}");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["data"], MODEL);
    assert_eq!(report["split"]["seed"], 1);
    let test = report["split"]["test"].as_array().unwrap();
    assert!(
        test.iter().any(|t| t["category"] == "unseen_single"),
        "{test:?}"
    );
    let summaries = report["summaries"].as_array().unwrap();
    assert!(summaries.iter().any(|s| s["method"] == "ensemble"));
    assert_eq!(report["rules"].as_array().unwrap().len(), 11);
    assert!(!report["scored"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn perturb_predict_lists_changes_with_paths_from_a_model_or_an_h5ad_screen() {
    let sb = Sandbox::new();
    let out = perturb(
        &sb,
        &[
            "predict",
            MODEL,
            "--genes",
            "PU1",
            "--model",
            "mechanistic",
            "--top",
            "3",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("PU1 KO (mechanistic): "), "{text}");
    assert!(
        text.contains("observed") && text.contains("PU1 activates"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  ")).count(),
        4,
        "{text}"
    );

    // A screen on disk, as `cellwright simulate screen` writes it; a pair it did not measure.
    let dir = sb.dir.path().join("screen");
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .args([
            "simulate",
            "screen",
            MODEL,
            "--cells-per-perturbation",
            "30",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let h5ad = dir.join("screen.h5ad");
    let args = ["predict", h5ad.to_str().unwrap(), "--genes", "gata1,PU1"];
    let out = perturb(&sb, &[&args[..], &["--model", "linear", "--json"]].concat()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let prediction: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(prediction["perturbation"], "GATA1 KO + PU1 KO");
    assert_eq!(prediction["measured"], false);
    let changes = prediction["changes"].as_array().unwrap();
    assert!(!changes.is_empty() && changes.len() <= 10);
    assert!(changes.iter().all(|c| c.get("path").is_none()));
}

#[tokio::test]
async fn perturb_refuses_unknown_genes_and_data_by_name() {
    let sb = Sandbox::new();
    let out = perturb(
        &sb,
        &[
            "predict",
            MODEL,
            "--genes",
            "GATA9",
            "--model",
            "train_mean",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("`GATA9`") && err.contains("`GATA1`"), "{err}");

    let out = perturb(&sb, &["predict", "krumsiek_myeloi", "--genes", "PU1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("krumsiek_myeloi`") && err.contains(MODEL),
        "{err}"
    );

    let out = perturb(
        &sb,
        &["predict", MODEL, "--genes", "PU1", "--model", "best"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "bad usage");
}
