//! `tf_targets` and `regulators_of` on the catalogue's Pathway Commons regulons (counts as in
//! `tests/data/regulons/regulons.json`).

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_tools_genedb::*;

#[tokio::test]
async fn the_regulon_tools_answer_from_one_shared_table() {
    let handle = RegulonsHandle::default();
    let ctx = ToolCtx::detached(0);
    let tp53 = TfTargets(handle.clone())
        .call(
            &ctx,
            TfTargetsArgs {
                tf: "tp53".into(),
                limit: Some(3),
            },
        )
        .await
        .unwrap();
    assert_eq!(tp53.tf, "TP53");
    assert_eq!(tp53.count, 800);
    assert_eq!(tp53.targets, ["AARS", "ABCA12", "ABCB1"]);
    assert_eq!(tp53.interaction_types, ["controls-expression-of"]);
    let myc = TfTargets(handle.clone())
        .call(
            &ctx,
            TfTargetsArgs {
                tf: "MYC".into(),
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((myc.count, myc.targets.len()), (2549, 200));
    // Sorted ignoring case: C1orf… among the C1… genes.
    assert!(myc.targets.iter().map(|t| t.to_uppercase()).is_sorted());

    let p21 = RegulatorsOf(handle.clone())
        .call(
            &ctx,
            RegulatorsOfArgs {
                gene: "CDKN1A".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!((p21.gene.as_str(), p21.count), ("CDKN1A", 132));
    assert_eq!(p21.regulators[..3], ["AHR", "ANGPT2", "AR"]);
    assert!(p21.regulators.contains(&"TP53".to_owned()));

    let err = TfTargets(handle)
        .call(
            &ctx,
            TfTargetsArgs {
                tf: "TP53X".into(),
                limit: None,
            },
        )
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound {
            what, suggestions, ..
        } => {
            assert_eq!(what, "regulator");
            assert!(suggestions.contains(&"TP53".to_owned()), "{suggestions:?}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn the_regulon_tools_read_their_prompt_files() {
    let tools = [
        TfTargets::default().description(),
        RegulatorsOf::default().description(),
    ];
    for description in tools {
        assert!(description.lines().count() >= 2, "{description}");
        assert!(description.contains("Example: {"), "{description}");
    }
}
