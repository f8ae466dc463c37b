//! `cellwright simulate`: what a user gets on disk, and how bad input is answered.

use cellwright_data::h5ad;

use crate::support::*;

#[tokio::test]
async fn simulations_write_cells_and_the_ground_truth_network() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let table = sb.dir.path().join("out/myeloid.tsv");
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args([
            "simulate",
            "krumsiek_myeloid",
            "--cells",
            "40",
            "--seed",
            "3",
        ])
        .args(["--knockout", "PU1", "--out"])
        .arg(&table)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("PU1 KO"), "{}", stdout(&out));
    let text = std::fs::read_to_string(&table).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header[0], "cell");
    assert_eq!(header.len(), 12, "{header:?}");
    let pu1 = header.iter().position(|h| *h == "PU1").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 40);
    assert!(
        rows.iter().all(|r| r[pu1] == "0"),
        "PU1 knocked out stays at 0"
    );
    let network = std::fs::read_to_string(sb.dir.path().join("out/myeloid.network.tsv")).unwrap();
    assert!(network.starts_with("regulator\ttarget\tsign\n"));
    assert_eq!(network.lines().count(), 31, "30 edges and a header");

    let dir = sb.dir.path().join("screen");
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args([
            "simulate",
            "screen",
            "krumsiek_myeloid",
            "--singles",
            "PU1,GATA1",
        ])
        .args([
            "--pairs",
            "1",
            "--cells-per-perturbation",
            "10",
            "--counts",
            "--out",
        ])
        .arg(&dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let m = h5ad::read(&dir.join("screen.h5ad")).unwrap();
    assert_eq!(m.shape(), (40, 11));
    let groups = m.obs_column("perturbation").unwrap();
    let labels: Vec<&str> = (0..40).map(|c| groups.label(c).unwrap()).collect();
    assert_eq!(labels[0], "control");
    assert_eq!(labels[39], "PU1 KO + GATA1 KO");
    assert!(
        m.layers.contains_key("mrna"),
        "counts keep the levels as a layer"
    );
}

#[tokio::test]
async fn bad_simulation_requests_are_clear_errors() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let run = |args: &'static [&'static str]| {
        let mut cmd = sb.command();
        cmd.env("CELLWRIGHT_CACHE", &cache)
            .arg("simulate")
            .args(args);
        async move { cmd.output().await.unwrap() }
    };
    let out = run(&["krumsiek_myeloid", "--knockout", "PU.1", "--cells", "5"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no node named PU.1 in the model (did you mean PU1?)"),
        "{}",
        stderr(&out)
    );
    let out = run(&["krumsiek_myeloid", "--cells", "-5"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&["krumsiek_myeloi"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did you mean krumsiek_myeloid"),
        "{}",
        stderr(&out)
    );
    let out = run(&["krumsiek_myeloid", "--cells", "0"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no cells"), "{}", stderr(&out));
    let out = run(&["krumsiek_myeloid", "--cells", "3", "--out", "cells.csv"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".h5ad or .tsv"), "{}", stderr(&out));
}
