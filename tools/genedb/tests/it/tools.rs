//! The gene-knowledge tools on the catalogue's databases.

#![allow(clippy::unwrap_used)]

use cellwright_core::{Tool, ToolCtx, ToolError};
use cellwright_data::genedb::Aspect;
use cellwright_tools_genedb::*;

#[tokio::test]
async fn the_tools_answer_from_one_shared_database() {
    let handle = GeneDbHandle::default();
    let ctx = ToolCtx::detached(0);
    let gene = LookupGene(handle.clone())
        .call(
            &ctx,
            LookupGeneArgs {
                query: "brca1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (gene.symbol.as_str(), gene.cytobands[0].as_str()),
        ("BRCA1", "17q21.31")
    );
    let terms = GoTerms(handle.clone())
        .call(
            &ctx,
            GoTermsArgs {
                gene: "GAPDH".into(),
                aspect: AspectChoice::All,
            },
        )
        .await
        .unwrap();
    assert!(terms.terms.iter().any(|t| t.go_id == "GO:0006096"));
    assert!(
        terms
            .terms
            .iter()
            .any(|t| t.aspect == Aspect::CellularComponent)
    );
    let members = GenesForTerm(handle.clone())
        .call(
            &ctx,
            GenesForTermArgs {
                term: "glycolytic process".into(),
            },
        )
        .await
        .unwrap();
    assert!(members.direct.contains(&"GAPDH".to_owned()));
    let err = LookupGene(handle)
        .call(
            &ctx,
            LookupGeneArgs {
                query: "BRCA11".into(),
            },
        )
        .await
        .unwrap_err();
    match err {
        ToolError::NotFound {
            what, suggestions, ..
        } => {
            assert_eq!(what, "human gene");
            assert!(suggestions.contains(&"BRCA1".to_owned()), "{suggestions:?}");
        }
        other => panic!("{other}"),
    }
}
