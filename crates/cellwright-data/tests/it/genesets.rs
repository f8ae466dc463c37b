//! Over-representation p- and q-values on the catalogue's canonical pathways equal scipy's
//! (`tests/data/genesets/make_fixture.py`).

use std::collections::BTreeMap;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_data::genesets::Collection;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    background_size: usize,
    queries: BTreeMap<String, Query>,
}

#[derive(Deserialize)]
struct Query {
    query: Vec<String>,
    tested: usize,
    results: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    set_size: usize,
    overlap: Vec<String>,
    p: f64,
    q: f64,
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-300) + 1e-300
        || ((ours.ln() - theirs.ln()).abs() < 1e-9)
}

#[test]
fn enrichment_matches_scipy_on_the_canonical_pathways() {
    let fixture: Fixture = serde_json::from_str(include_str!(
        "../../../../tests/data/genesets/enrichment.json"
    ))
    .unwrap();
    let files = catalogue::find("gene-sets")
        .unwrap()
        .fetch(&NoProgress, &CancelToken::new())
        .unwrap();
    let pathways = files.iter().find(|f| f.ends_with("pathway.csv")).unwrap();
    let collection = Collection::read_csv(pathways, "canonical pathways").unwrap();
    assert_eq!(collection.sets.len(), 1329);
    for (name, expected) in &fixture.queries {
        let report = collection.enrich(&expected.query, None);
        assert_eq!(report.background_size, fixture.background_size, "{name}");
        assert_eq!(report.tested, expected.tested, "{name}");
        for (ours, theirs) in report.results.iter().zip(&expected.results) {
            assert_eq!(ours.id, theirs.id, "{name}");
            assert_eq!(ours.set_size, theirs.set_size, "{name} {}", ours.id);
            assert_eq!(ours.overlap, theirs.overlap, "{name} {}", ours.id);
            assert!(
                close(ours.p, theirs.p),
                "{name} {}: p {} vs {}",
                ours.id,
                ours.p,
                theirs.p
            );
            assert!(
                close(ours.q, theirs.q),
                "{name} {}: q {} vs {}",
                ours.id,
                ours.q,
                theirs.q
            );
        }
    }
}

#[test]
fn malformed_collections_are_errors_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sets.csv");
    std::fs::write(&path, "ID,Name,Genes\n1,a,X;Y\n1,b,Z\n").unwrap();
    let err = Collection::read_csv(&path, "bad").unwrap_err();
    assert!(
        err.to_string().ends_with("sets.csv:3: set 1 appears twice"),
        "{err}"
    );
    std::fs::write(&path, "ID,Title\n1,a\n").unwrap();
    let err = Collection::read_csv(&path, "bad").unwrap_err();
    assert!(
        err.to_string().ends_with("sets.csv:1: no `Name` column"),
        "{err}"
    );
    let err = Collection::read_csv(&dir.path().join("absent.csv"), "bad").unwrap_err();
    assert!(err.to_string().contains("absent.csv"), "{err}");
}
