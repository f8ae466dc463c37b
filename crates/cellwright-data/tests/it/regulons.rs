//! The catalogue's Pathway Commons regulons, read from priori's pickled pandas DataFrame,
//! against counts a separate Python reader took from the same file
//! (`tests/data/regulons/make_fixture.py`), and the reader's handling of block layouts and
//! of files that are not that table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_data::regulons::{Interaction, RegulonError, Regulons};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    columns: Vec<String>,
    rows: usize,
    distinct_edges: usize,
    tfs: usize,
    targets: usize,
    types: BTreeMap<String, usize>,
    first_row: [String; 3],
    last_row: [String; 3],
    genes: BTreeMap<String, GeneCounts>,
}

#[derive(Deserialize)]
struct GeneCounts {
    targets: usize,
    first_targets: Vec<String>,
    regulators: usize,
    first_regulators: Vec<String>,
}

fn pathway_commons() -> Regulons {
    let path = catalogue::find("pathway-commons-regulons")
        .unwrap()
        .fetch(&NoProgress, &CancelToken::new())
        .unwrap()
        .remove(0);
    Regulons::read(&path).unwrap()
}

fn fixture_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/regulons")
        .join(name)
}

#[test]
fn the_pathway_commons_regulons_match_an_independent_reader() {
    let fixture: Fixture = serde_json::from_str(include_str!(
        "../../../../tests/data/regulons/regulons.json"
    ))
    .unwrap();
    assert_eq!(fixture.columns, ["UpGene", "Type", "DownGene"]);
    assert_eq!(fixture.rows, fixture.distinct_edges, "no row repeats");
    let regulons = pathway_commons();
    assert_eq!(regulons.len(), fixture.distinct_edges);
    assert_eq!(regulons.tfs().count(), fixture.tfs);
    assert_eq!(regulons.targets().count(), fixture.targets);
    let mut types = BTreeMap::new();
    for edge in &regulons {
        *types.entry(edge.kind.clone()).or_insert(0) += 1;
    }
    assert_eq!(types, fixture.types);
    for [regulator, kind, target] in [&fixture.first_row, &fixture.last_row] {
        let edge = Interaction::new(regulator, target, kind);
        assert!(
            regulons.targets_of(regulator).unwrap().contains(&edge),
            "{edge:?}"
        );
    }
    for (gene, expected) in &fixture.genes {
        match regulons.targets_of(gene) {
            Ok(edges) => {
                assert_eq!(edges.len(), expected.targets, "{gene}");
                let first: Vec<&str> = edges.iter().take(5).map(|e| e.target.as_str()).collect();
                assert_eq!(first, expected.first_targets, "{gene}");
                assert!(edges.iter().all(|e| e.regulator == *gene));
            }
            Err(e) => assert_eq!(expected.targets, 0, "{gene}: {e}"),
        }
        match regulons.regulators_of(gene) {
            Ok(edges) => {
                assert_eq!(edges.len(), expected.regulators, "{gene}");
                let first: Vec<&str> = edges.iter().take(5).map(|e| e.regulator.as_str()).collect();
                assert_eq!(first, expected.first_regulators, "{gene}");
            }
            Err(e) => assert_eq!(expected.regulators, 0, "{gene}: {e}"),
        }
    }
    // Symbols match ignoring case and surrounding space.
    assert_eq!(
        regulons.targets_of(" tp53 ").unwrap(),
        regulons.targets_of("TP53").unwrap()
    );
}

#[test]
fn unknown_symbols_are_answered_with_close_ones() {
    let regulons = pathway_commons();
    match regulons.targets_of("TP53X").unwrap_err() {
        RegulonError::UnknownRegulator { query, suggestions } => {
            assert_eq!(query, "TP53X");
            assert!(suggestions.contains(&"TP53".to_owned()), "{suggestions:?}");
        }
        other => panic!("{other}"),
    }
    match regulons.regulators_of("CDKN1AA").unwrap_err() {
        RegulonError::UnknownTarget { suggestions, .. } => {
            assert!(
                suggestions.contains(&"CDKN1A".to_owned()),
                "{suggestions:?}"
            )
        }
        other => panic!("{other}"),
    }
    let err = regulons.targets_of("STAT33").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no regulator `STAT33` in the regulons (did you mean STAT3"),
        "{err}"
    );
}

#[test]
fn columns_are_placed_by_mgr_locs_not_by_block_order() {
    // Block 0 is DownGene, block 1 UpGene and Type in Fortran order; one edge is given twice
    // and one again in another case (`make_tiny_frame.py`).
    let regulons = Regulons::read(&fixture_file("tiny_frame.pkl")).unwrap();
    let edges: Vec<(&str, &str, &str)> = regulons
        .iter()
        .map(|e| (e.regulator.as_str(), e.target.as_str(), e.kind.as_str()))
        .collect();
    let kind = "controls-expression-of";
    assert_eq!(
        edges,
        [
            ("E2F1", "CDKN1A", kind),
            ("Myc", "CDK4", kind),
            ("TP53", "CDKN1A", kind),
            ("TP53", "MDM2", kind),
        ]
    );
    let regulators: Vec<&str> = regulons
        .regulators_of("cdkn1a")
        .unwrap()
        .iter()
        .map(|e| e.regulator.as_str())
        .collect();
    assert_eq!(regulators, ["E2F1", "TP53"]);
    assert_eq!(regulons.tfs().collect::<Vec<_>>(), ["E2F1", "Myc", "TP53"]);
    assert_eq!(
        regulons.targets().collect::<Vec<_>>(),
        ["CDK4", "CDKN1A", "MDM2"]
    );
}

#[test]
fn files_that_are_not_the_table_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pkl");
    std::fs::write(&text, "UpGene\tType\tDownGene\n").unwrap();
    let err = Regulons::read(&text).unwrap_err();
    assert!(matches!(err, RegulonError::Pickle { .. }), "{err}");
    assert!(err.to_string().contains("notes.pkl"), "{err}");

    // A valid pickle of something else: pickle.dumps({"a": [1, 2]}, protocol=2).
    let other = dir.path().join("dict.pkl");
    std::fs::write(
        &other,
        b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02es.",
    )
    .unwrap();
    let err = Regulons::read(&other).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("dict.pkl: not the expected pandas table: expected a DataFrame object"),
        "{err}"
    );

    let missing = dir.path().join("missing.pkl");
    assert!(matches!(
        Regulons::read(&missing).unwrap_err(),
        RegulonError::Io { .. }
    ));
}

#[test]
fn edges_given_directly_are_sorted_and_deduplicated_ignoring_case() {
    let kind = "controls-expression-of";
    let regulons = Regulons::from_edges([
        Interaction::new("SOX2", "NANOG", kind),
        Interaction::new("POU5F1", "NANOG", kind),
        Interaction::new("sox2", "nanog", kind),
        Interaction::new("SOX2", "POU5F1", kind),
        Interaction::new("SOX2", "POU5F1", "controls-state-change-of"),
    ]);
    assert_eq!(regulons.len(), 4);
    let targets: Vec<(&str, &str)> = regulons
        .targets_of("Sox2")
        .unwrap()
        .iter()
        .map(|e| (e.target.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("NANOG", kind),
            ("POU5F1", kind),
            ("POU5F1", "controls-state-change-of")
        ]
    );
    assert!(matches!(
        regulons.regulators_of("SOX2"),
        Err(RegulonError::UnknownTarget { .. })
    ));
    assert!(Regulons::from_edges([]).is_empty());
}
