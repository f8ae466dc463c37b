//! Gene lookups against the catalogue's org.Hs.eg.db and GO.db, checked on facts known
//! independently of these files (NCBI Gene's Entrez ids and locations).

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_data::genedb::{Aspect, GeneDb, GeneDbError};

async fn db() -> GeneDb {
    let path = |name: &str| {
        catalogue::find(name)
            .unwrap()
            .fetch(&NoProgress, &CancelToken::new())
            .unwrap()
            .remove(0)
    };
    GeneDb::open(&path("org.Hs.eg.db"), &path("GO.db"))
        .await
        .unwrap()
}

#[tokio::test]
async fn names_are_the_symbols_and_aliases_lookup_resolves() {
    let db = db().await;
    let names = db.names().await.unwrap();
    let has = |n: &str| names.iter().any(|s| s == n);
    assert!(
        has("TP53") && has("LFS1") && has("PU.1"),
        "{} names",
        names.len()
    );
    assert!(!has("CORUM") && !has("knocked"));
    for name in names.iter().step_by(5000) {
        assert!(db.lookup(name).await.is_ok(), "{name}");
    }
}

#[tokio::test]
async fn genes_are_found_by_symbol_alias_and_entrez_id() {
    let db = db().await;
    // symbol or id, Entrez id, chromosome, cytoband
    let table = [
        ("TP53", "7157", "17", "17p13.1"),
        ("BRCA1", "672", "17", "17q21.31"),
        ("CD8A", "925", "2", "2p11.2"),
        ("GAPDH", "2597", "12", "12p13.31"),
        ("MYC", "4609", "8", "8q24.21"),
        ("7157", "7157", "17", "17p13.1"),
        ("gata1", "2623", "X", "Xp11.23"),
    ];
    for (query, entrez, chromosome, band) in table {
        let gene = db.lookup(query).await.unwrap();
        assert_eq!(gene.entrez_id, entrez, "{query}");
        assert_eq!(gene.chromosomes, [chromosome], "{query}");
        assert_eq!(gene.cytobands, [band], "{query}");
    }
    let tp53 = db.lookup("LFS1").await.unwrap();
    assert_eq!(
        (tp53.symbol.as_str(), tp53.matched_by.as_str()),
        ("TP53", "alias")
    );
    assert!(tp53.go_terms[&Aspect::BiologicalProcess] > 50);
    assert_eq!(db.lookup("7157").await.unwrap().matched_by, "entrez_id");

    match db.lookup("TP53X").await.unwrap_err() {
        GeneDbError::UnknownGene { suggestions, .. } => {
            assert!(suggestions.contains(&"TP53".to_owned()), "{suggestions:?}")
        }
        other => panic!("{other}"),
    }
    // Text that looks like SQL is only ever a bound value.
    let err = db.lookup("x' OR '1'='1").await.unwrap_err();
    assert!(matches!(err, GeneDbError::UnknownGene { .. }), "{err}");
}

#[tokio::test]
async fn go_terms_and_their_genes() {
    let db = db().await;
    let (gene, terms) = db
        .go_terms("GAPDH", &[Aspect::BiologicalProcess])
        .await
        .unwrap();
    assert_eq!(gene.symbol, "GAPDH");
    let glycolysis = terms.iter().find(|t| t.go_id == "GO:0006096").unwrap();
    assert_eq!(glycolysis.term, "glycolytic process");
    assert!(!glycolysis.evidence.is_empty());
    assert!(terms.iter().all(|t| t.aspect == Aspect::BiologicalProcess));

    let by_id = db.genes_for_term("GO:0006096").await.unwrap();
    let by_name = db.genes_for_term("Glycolytic Process").await.unwrap();
    assert_eq!(by_id, by_name);
    for enzyme in ["GAPDH", "PGK1", "ENO1", "PKM", "TPI1"] {
        assert!(by_id.direct.contains(&enzyme.to_owned()), "{enzyme}");
    }
    assert!(by_id.with_offspring >= by_id.direct.len());
    match db.genes_for_term("glycolysis process").await.unwrap_err() {
        GeneDbError::UnknownTerm { query, .. } => assert_eq!(query, "glycolysis process"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_gene_has_a_card_that_agrees_with_the_per_gene_queries() {
    let db = db().await;
    let cards = db.cards().await.unwrap();
    // org.Hs.eg.db 3.16 holds 77,614 genes; every one gets a card.
    assert_eq!(cards.len(), 77_614);
    let gapdh = cards.iter().find(|c| c.symbol == "GAPDH").unwrap();
    assert_eq!(gapdh.entrez_id, "2597");
    let (gene, terms) = db.go_terms("GAPDH", &Aspect::ALL).await.unwrap();
    assert_eq!(gapdh.name, gene.name);
    for aspect in Aspect::ALL {
        let mut expected: Vec<String> = terms
            .iter()
            .filter(|t| t.aspect == aspect)
            .map(|t| t.term.clone())
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(gapdh.go[&aspect], expected, "{aspect:?}");
    }
    assert!(gapdh.go[&Aspect::BiologicalProcess].contains(&"glycolytic process".to_owned()));
}

#[tokio::test]
async fn a_file_that_is_not_the_database_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(
        &junk,
        b"not a database at all, just text that is long enough",
    )
    .unwrap();
    let go = catalogue::find("GO.db")
        .unwrap()
        .fetch(&NoProgress, &CancelToken::new())
        .unwrap()
        .remove(0);
    let err = GeneDb::open(&junk, &go).await.unwrap_err();
    assert!(err.to_string().contains("junk.sqlite"), "{err}");
    // The right kind of file for the wrong role.
    let err = GeneDb::open(&go, &go).await.unwrap_err();
    assert!(err.to_string().contains("no `gene_info` table"), "{err}");
}
