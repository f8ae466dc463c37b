//! `cellwright grn infer`: a ranked edge list on disk from simulated cells, and clear errors.

use crate::support::*;

#[tokio::test]
async fn grn_infer_writes_a_ranked_edge_list_and_refuses_bad_input() {
    let sb = Sandbox::new();
    let cache = cellwright_fetch::cache_dir();
    let cells = sb.dir.path().join("myeloid.h5ad");
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", &cache)
        .args([
            "simulate",
            "krumsiek_myeloid",
            "--cells",
            "200",
            "--seed",
            "2",
        ])
        .args(["--design", "trajectory", "--out"])
        .arg(&cells)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tfs = sb.dir.path().join("tfs.txt");
    std::fs::write(
        &tfs,
        "# regulators\nGATA1\nPU1, a comment after the name\n\nCEBPA\n",
    )
    .unwrap();

    let edges = sb.dir.path().join("out/edges.tsv");
    let infer = |method: &'static str| {
        let mut c = sb.command();
        c.args(["grn", "infer"])
            .arg(&cells)
            .args(["--method", method, "--tfs"])
            .arg(&tfs)
            .arg("--out")
            .arg(&edges);
        c
    };
    for method in ["boost", "forest", "corr", "spearman", "random"] {
        let mut c = infer(method);
        if method == "forest" {
            c.args(["--trees", "20"]);
        }
        let out = c.output().await.unwrap();
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let text = std::fs::read_to_string(&edges).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("regulator\ttarget\tscore"));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
        // 3 regulators × the 10 other genes each.
        assert_eq!(rows.len(), 30, "{method}");
        assert!(
            rows.iter()
                .all(|r| ["GATA1", "PU1", "CEBPA"].contains(&r[0]) && r[0] != r[1])
        );
        let scores: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{method}: best first"
        );
        assert!(stdout(&out).contains("30 edges"), "{}", stdout(&out));
    }

    // A regulator the data lack: refused with its name, accepted when asked to ignore it.
    std::fs::write(&tfs, "GATA1\nGATA9\n").unwrap();
    let out = infer("boost").output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("GATA9") && stderr(&out).contains("--ignore-missing-tfs"));
    let out = infer("boost")
        .arg("--ignore-missing-tfs")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("regulators not in the data, left out: GATA9"),
        "{}",
        stderr(&out)
    );

    // Not a data file.
    let notes = sb.dir.path().join("notes.json");
    std::fs::write(&notes, "{}").unwrap();
    let out = sb
        .command()
        .args(["grn", "infer"])
        .arg(&notes)
        .arg("--out")
        .arg(&edges)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a format we read"),
        "{}",
        stderr(&out)
    );
}
