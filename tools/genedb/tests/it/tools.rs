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
    let tool = GoTerms(handle.clone());
    let go_terms = |gene: &str, limit| {
        tool.call(
            &ctx,
            GoTermsArgs {
                gene: gene.into(),
                aspect: AspectChoice::All,
                limit,
            },
        )
    };
    // The best supported 40: experimental evidence before electronic annotation.
    let best = go_terms("TP53", None).await.unwrap();
    assert_eq!(best.terms.len(), 40);
    assert!(best.count > 40, "{}", best.count);
    let experimental = |t: &cellwright_data::genedb::Annotation| {
        t.evidence
            .iter()
            .any(|c| ["IDA", "IMP", "IPI", "EXP"].contains(&c.as_str()))
    };
    assert!(experimental(&best.terms[0]), "{:?}", best.terms[0]);
    assert!(
        best.terms
            .iter()
            .all(|t| experimental(t) || t.evidence.iter().all(|c| c != "IEA")),
        "{:?}",
        best.terms
    );
    let terms = go_terms("GAPDH", Some(500)).await.unwrap();
    assert_eq!(terms.terms.len(), terms.count);
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
