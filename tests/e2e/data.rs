//! `cellwright data`: the catalogue as a user sees it.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn the_catalogue_lists_fetches_and_explains_its_data_sets() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args(["data", "list", "--json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "pbmc68k_reduced",
        "pyboolnet-models",
        "cell-collective-models",
        "gene-sets",
        "hgnc",
    ] {
        assert!(names.contains(&wanted), "{names:?}");
    }
    for row in rows.as_array().unwrap() {
        assert_eq!(row["sha256"].as_str().unwrap().len(), 64, "{row}");
        assert!(!row["licence"].as_str().unwrap().is_empty(), "{row}");
    }

    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args(["data", "fetch", "cell-collective-models"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cell-collective-models: 74 files from cana==1.0.0"),
        "{}",
        stdout(&out)
    );
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args(["data", "info", "cell-collective-models", "--json"])
        .output()
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["cached"].as_array().unwrap().len(), 74, "{info}");

    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args(["data", "info", "pyboolnet"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no data set named pyboolnet (did you mean pyboolnet-models?)"),
        "{}",
        stderr(&out)
    );
}

/// `cellwright data convert` writes .h5ad files that Python's anndata opens with the same
/// values as the sources: scanpy's pbmc68k_reduced (old layout, read by anndata itself) and
/// Seurat's pbmc_raw table (read by pandas).
#[tokio::test]
async fn converted_files_open_in_anndata_equal_to_their_sources() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let source = |name: &str| {
        cellwright_data::catalogue::find(name)
            .unwrap()
            .fetch(
                &cellwright_core::NoProgress,
                &cellwright_core::CancelToken::new(),
            )
            .unwrap()
            .remove(0)
    };
    let (pbmc68k, pbmc_raw) = (source("pbmc68k_reduced"), source("pbmc_raw"));
    let converted = ["pbmc68k.h5ad", "pbmc_raw.h5ad"].map(|name| sb.dir.path().join(name));
    for (input, output) in [&pbmc68k, &pbmc_raw].into_iter().zip(&converted) {
        let out = sb
            .command()
            .env("CELLWRIGHT_CACHE", &cache)
            .args(["data", "convert"])
            .arg(input)
            .arg(output)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let root = workspace_root().join("tests/data/anndata");
    let python = python_venv(
        "anndata",
        &std::fs::read_to_string(root.join("requirements.txt")).unwrap(),
    );
    let out = tokio::process::Command::new(python)
        .arg(root.join("check.py"))
        .args([&pbmc68k, &converted[0], &pbmc_raw, &converted[1]])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("ok: 700×765 and 80×230"),
        "{}",
        stdout(&out)
    );
}
