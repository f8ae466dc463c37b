//! `cellwright embed genes|cells` with the real databases and MiniLM: gene embeddings that put
//! proteasome subunits together, incremental rebuilds, cell embeddings as CSV, clear errors.

use cellwright_embed::GeneEmbeddings;

use crate::support::*;

#[tokio::test]
async fn gene_and_cell_embeddings_are_built_from_the_shipped_knowledge() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let table = sb.dir.path().join("genes.safetensors");
    let genes = |list: &str, similar: &str| {
        let mut c = sb.command();
        c.env("CELLWRIGHT_CACHE", &cache)
            .args([
                "embed",
                "genes",
                "--genes",
                list,
                "--top",
                "2",
                "--similar",
                similar,
            ])
            .arg("--table")
            .arg(&table);
        c
    };
    let out = genes("PSMA1,PSMA2,PSMB5,GAPDH,PGK1,CD3E,CD8A", "PSMA1")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("7 genes × 384 dimensions"), "{text}");
    // The nearest genes to a proteasome subunit are the other two subunits.
    let near: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("nearest to PSMA1"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        near.len() == 2 && near.iter().all(|g| ["PSMA2", "PSMB5"].contains(g)),
        "{text}"
    );
    let first = GeneEmbeddings::load(&table).unwrap();

    // One more gene: the table grows, the earlier rows are kept as they were.
    let out = genes("CD4", "CD4").output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("8 genes × 384 dimensions"),
        "{}",
        stdout(&out)
    );
    let second = GeneEmbeddings::load(&table).unwrap();
    for gene in first.genes() {
        assert_eq!(first.get(gene), second.get(gene), "{gene}");
    }

    // A gene the table lacks is named.
    let out = genes("GAPDH", "NOTAGENE").output().await.unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no gene `NOTAGENE`"),
        "{}",
        stderr(&out)
    );

    // Cells of a simulated myeloid model: GenePT-w and cell sentences.
    let cells = sb.dir.path().join("myeloid.h5ad");
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args(["simulate", "krumsiek_myeloid", "--cells", "40", "--out"])
        .arg(&cells)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Every method, each with its width: PCA (at most the 11 genes), the VAE's 10 latent
    // dimensions, MiniLM's 384; the VAE also draws its UMAP.
    for (method, width) in [
        ("pca", None),
        ("vae", Some(11)),
        ("genept-w", Some(385)),
        ("sentences", Some(385)),
    ] {
        let csv = sb.dir.path().join(format!("{method}.csv"));
        let plot = sb.dir.path().join(format!("{method}.svg"));
        let out = sb
            .command()
            .env("CELLWRIGHT_CACHE", &cache)
            .args(["embed", "cells"])
            .arg(&cells)
            .args(["--method", method, "--epochs", "40", "--table"])
            .arg(&table)
            .arg("--out")
            .arg(&csv)
            .arg("--plot")
            .arg(&plot)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let text = std::fs::read_to_string(&csv).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 41, "{method}");
        assert_eq!(rows[0][..2], ["cell", "dim0"]);
        let width = width.unwrap_or(rows[0].len());
        assert!(
            (3..=12).contains(&rows[0].len()) || method != "pca",
            "{method}"
        );
        assert!(rows.iter().all(|r| r.len() == width), "{method}");
        assert!(
            rows[1][1..]
                .iter()
                .all(|x| x.parse::<f32>().is_ok_and(f32::is_finite)),
            "{method}"
        );
        let svg = std::fs::read_to_string(&plot).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.matches("<circle").count() >= 40,
            "{method}"
        );
        if method == "vae" {
            assert!(stderr(&out).contains("VAE with a "), "{}", stderr(&out));
        }
        if method == "genept-w" {
            // The model's node names are partly not gene symbols (PU1 is SPI1): reported.
            assert!(
                stderr(&out).contains("genes have knowledge embeddings (missing e.g."),
                "{}",
                stderr(&out)
            );
        }
    }
}

#[tokio::test]
async fn annotate_transfers_pbmc_labels_and_names_bad_columns() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let pbmc = cellwright_data::catalogue::find("pbmc68k_reduced")
        .unwrap()
        .fetch_file(
            ".h5ad",
            &cellwright_core::NoProgress,
            &cellwright_core::CancelToken::new(),
        )
        .unwrap();
    let table = sb.dir.path().join("genes.safetensors");
    let out_csv = sb.dir.path().join("labels.csv");
    let annotate = |extra: &[&str]| {
        let mut c = sb.command();
        c.env("CELLWRIGHT_CACHE", &cache)
            .arg("annotate")
            .arg("--reference")
            .arg(&pbmc)
            .arg("--query")
            .arg(&pbmc)
            .args(["--layer", "raw", "--table"])
            .arg(&table)
            .args(extra);
        c
    };
    let out = annotate(&["--label", "bulk_labels", "--out"])
        .arg(&out_csv)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["cell", "label", "confidence"]);
    assert_eq!(rows.len(), 701);
    assert!(
        rows[1..]
            .iter()
            .all(|r| { r.len() == 3 && r[2].parse::<f32>().is_ok_and(|c| c > 0.0 && c <= 1.0) })
    );
    assert!(stdout(&out).contains("CD14+ Monocyte"), "{}", stdout(&out));

    let out = annotate(&["--label", "no_such_column"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no obs column `no_such_column` (it has: "),
        "{}",
        stderr(&out)
    );
    let out = annotate(&["--label", "n_genes"]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not labels"), "{}", stderr(&out));
}
