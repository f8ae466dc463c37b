//! Knowledge-text gene embeddings (the texts, incremental builds, the file format) and the
//! cell embeddings built on them, with bad input.
//! The embedder is a test double behind the `Embedder` contract (the boundary), which counts
//! the texts it is asked for; the real MiniLM runs in the CLI's tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use cellwright_core::{CancelToken, Embedder, ModelError, NoProgress};
use cellwright_data::genedb::{Aspect, GeneCard};
use cellwright_data::genesets::{Collection, GeneSet};
use cellwright_data::matrix::{ExpressionMatrix, Values};
use cellwright_embed::{
    AnnotateError, CellEmbedding, GeneEmbeddingError, GeneEmbeddings, GeneText, KMeans, build,
    build_in_steps, cell_sentences, embed_sentences, genept_w, kmeans, knowledge_texts,
    transfer_labels,
};
use futures::future::BoxFuture;

/// Letter counts of the text, L2-normalised: texts sharing words get close vectors.
struct Letters {
    asked: Mutex<Vec<String>>,
    dimension: usize,
}

impl Letters {
    fn new() -> Self {
        Self {
            asked: Mutex::new(Vec::new()),
            dimension: 26,
        }
    }

    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl Embedder for Letters {
    fn id(&self) -> String {
        "letters".into()
    }

    fn dimension(&self) -> usize {
        26
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ModelError>> {
        self.asked.lock().unwrap().extend(texts.iter().cloned());
        Box::pin(async move {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0f32; self.dimension];
                    for b in t.bytes().filter(u8::is_ascii_alphabetic) {
                        v[usize::from(b.to_ascii_lowercase() - b'a') % self.dimension] += 1.0;
                    }
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                    v.iter().map(|x| x / norm).collect()
                })
                .collect())
        })
    }
}

fn card(symbol: &str, name: &str, go: &[(Aspect, &[&str])]) -> GeneCard {
    GeneCard {
        entrez_id: "0".into(),
        symbol: symbol.into(),
        name: name.into(),
        go: go
            .iter()
            .map(|(a, terms)| (*a, terms.iter().map(|t| t.to_string()).collect()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn text(gene: &str, text: &str) -> GeneText {
    GeneText {
        gene: gene.into(),
        text: text.into(),
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

#[test]
fn a_gene_is_described_by_its_name_terms_pathways_and_complexes() {
    let cards = [
        card(
            "PSMA1",
            "proteasome 20S subunit alpha 1",
            &[
                (
                    Aspect::BiologicalProcess,
                    &["proteolysis", "antigen processing"],
                ),
                (Aspect::MolecularFunction, &["endopeptidase activity"]),
                (Aspect::CellularComponent, &["proteasome complex"]),
            ],
        ),
        card("NEW1", "a gene nobody studied", &[]),
    ];
    let pathways = Collection::new(
        "pathways",
        vec![
            GeneSet::new("p2", "Proteasome", ["PSMA1", "PSMB1"]),
            GeneSet::new("p1", "Antigen presentation", ["PSMA1"]),
        ],
    );
    let complexes = Collection::new(
        "complexes",
        vec![GeneSet::new("c1", "20S proteasome", ["PSMA1"])],
    );
    let texts = knowledge_texts(
        &cards,
        &[("Complexes", &complexes), ("Pathways", &pathways)],
    );
    assert_eq!(
        texts[0].text,
        "PSMA1: proteasome 20S subunit alpha 1. Molecular function: endopeptidase activity. \
         Complexes: 20S proteasome. Pathways: Antigen presentation; Proteasome. \
         Biological process: proteolysis; antigen processing. Cellular component: proteasome complex."
    );
    assert_eq!(texts[1], text("NEW1", "NEW1: a gene nobody studied."));
}

#[test]
fn a_rebuild_embeds_only_new_or_changed_texts_and_the_file_round_trips() {
    let embedder = Letters::new();
    let (none, cancel) = (NoProgress, CancelToken::new());
    let texts = vec![
        text("AAA", "aaaa bbbb"),
        text("AAB", "aaaa bbbc"),
        text("ZZZ", "zzzz yyyy"),
    ];
    let first = run(build(&texts, &embedder, None, &none, &cancel)).unwrap();
    assert_eq!(embedder.asked().len(), 3);
    let near = first.nearest("aaa", 2).unwrap();
    assert_eq!(near[0].0, "AAB");
    assert_eq!(near[1].0, "ZZZ");
    assert!(near[0].1 > near[1].1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genes.safetensors");
    first.save(&path).unwrap();
    let loaded = GeneEmbeddings::load(&path).unwrap();
    assert_eq!(loaded, first);

    // One text changed, one gene added: two texts embedded, the others reused unchanged.
    let mut changed = texts.clone();
    changed[2].text = "zzzz xxxx".into();
    changed.push(text("NEW", "new gene"));
    let second = run(build(&changed, &embedder, Some(&loaded), &none, &cancel)).unwrap();
    assert_eq!(embedder.asked(), ["zzzz xxxx", "new gene"]);
    assert_eq!(second.get("AAA"), first.get("AAA"));
    assert_ne!(second.get("ZZZ"), first.get("ZZZ"));
    assert_eq!(second.genes(), ["AAA", "AAB", "ZZZ", "NEW"]);
}

#[test]
fn a_stepped_build_keeps_each_step_and_a_stopped_build_resumes_where_it_stopped() {
    let embedder = Letters::new();
    let none = NoProgress;
    let texts: Vec<GeneText> = (0..7)
        .map(|i| text(&format!("G{i}"), &"abcdefg"[..=i]))
        .collect();
    // G0 and G1 are already in the table; the other five are embedded in steps of two, and
    // the build is cancelled once the second step has been kept.
    let previous = run(build(
        &texts[..2],
        &embedder,
        None,
        &none,
        &CancelToken::new(),
    ))
    .unwrap();
    embedder.asked();
    let cancel = CancelToken::new();
    let mut kept: Vec<Vec<String>> = Vec::new();
    let stopped = run(build_in_steps(
        &texts,
        &embedder,
        Some(&previous),
        2,
        &none,
        &cancel,
        |t| {
            kept.push(t.genes().to_vec());
            if kept.len() == 2 {
                cancel.cancel();
            }
            Ok(())
        },
    ));
    assert!(matches!(stopped, Err(GeneEmbeddingError::Cancelled)));
    assert_eq!(
        kept,
        [
            vec!["G0", "G1", "G2", "G3"],
            vec!["G0", "G1", "G2", "G3", "G4", "G5"]
        ]
    );
    assert_eq!(embedder.asked(), ["abc", "abcd", "abcde", "abcdef"]);
    // Resumed from the last kept table, only G6 is left to embed; the result is the one-go
    // build's.
    let partial = run(build(
        &texts[..6],
        &embedder,
        Some(&previous),
        &none,
        &CancelToken::new(),
    ))
    .unwrap();
    embedder.asked();
    let resumed = run(build_in_steps(
        &texts,
        &embedder,
        Some(&partial),
        2,
        &none,
        &CancelToken::new(),
        |_| panic!("one step needs no partial table"),
    ))
    .unwrap();
    assert_eq!(embedder.asked(), ["abcdefg"]);
    let whole = run(build(&texts, &embedder, None, &none, &CancelToken::new())).unwrap();
    assert_eq!(resumed, whole);
}

#[test]
fn bad_input_is_a_clear_error() {
    let embedder = Letters::new();
    let (none, cancel) = (NoProgress, CancelToken::new());
    let table = run(build(&[text("A", "a")], &embedder, None, &none, &cancel)).unwrap();
    assert!(matches!(
        table.nearest("TP53", 5),
        Err(GeneEmbeddingError::UnknownGene(g)) if g == "TP53"
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    std::fs::write(&path, b"not a table").unwrap();
    let err = GeneEmbeddings::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("broken.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );

    cancel.cancel();
    let err = run(build(&[text("A", "a")], &embedder, None, &none, &cancel)).unwrap_err();
    assert!(matches!(err, GeneEmbeddingError::Cancelled));

    let mut wrong = Letters::new();
    wrong.dimension = 3;
    let err = run(build(
        &[text("A", "a")],
        &wrong,
        None,
        &none,
        &CancelToken::new(),
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the embedder returned vectors of 3 values, 26 expected"
    );
}

fn matrix(rows: &[&[f32]], genes: &[&str]) -> ExpressionMatrix {
    let cells = (0..rows.len()).map(|i| format!("cell{i}")).collect();
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let x = ndarray::Array2::from_shape_vec((rows.len(), genes.len()), flat).unwrap();
    ExpressionMatrix::new(
        Values::Dense(x),
        cells,
        genes.iter().map(|g| g.to_string()).collect(),
    )
    .unwrap()
}

/// A 3-gene table whose vectors are the texts' letter counts: "a" → e_a, "b" → e_b, "ab" →
/// (e_a + e_b)/√2.
fn three_genes() -> GeneEmbeddings {
    let texts = [text("G1", "a"), text("G2", "b"), text("G3", "ab")];
    run(build(
        &texts,
        &Letters::new(),
        None,
        &NoProgress,
        &CancelToken::new(),
    ))
    .unwrap()
}

#[test]
fn genept_w_is_the_expression_weighted_mean_of_gene_vectors() {
    let table = three_genes();
    // Gene names in another order and case than the table, plus one it lacks.
    let m = matrix(
        &[&[2.0, 0.0, 1.0, 5.0], &[0.0, 3.0, 0.0, 4.0]],
        &["g3", "UNKNOWN", "G1", "G2"],
    );
    let (cells, coverage) = genept_w(&m, &table).unwrap();
    assert_eq!((coverage.used, coverage.missing), (3, 1));
    assert_eq!(coverage.missing_examples, ["UNKNOWN"]);
    // Cell 0: (2 · (e_a + e_b)/√2 + 1 · e_a + 5 · e_b) / 8, then L2-normalised.
    let r = std::f32::consts::SQRT_2;
    let (a, b) = (2.0 / r + 1.0, 2.0 / r + 5.0);
    let norm = (a * a + b * b).sqrt();
    let row = cells.row(0);
    assert!(
        (row[0] - a / norm).abs() < 1e-6 && (row[1] - b / norm).abs() < 1e-6,
        "{row:?}"
    );
    assert!(row[2..].iter().all(|&x| x == 0.0));
    // Cell 1: its UNKNOWN expression is ignored, so it is G2's vector, e_b.
    assert_eq!(cells.row(1)[..2], [0.0, 1.0]);
    // Cell 1 expresses only a gene without a vector: a zero vector, counted.
    let (cells, coverage) = genept_w(
        &matrix(&[&[1.0, 0.0], &[0.0, 3.0]], &["G1", "UNKNOWN"]),
        &table,
    )
    .unwrap();
    assert_eq!(coverage.uncovered_cells, 1);
    assert!(cells.row(1).iter().all(|&x| x == 0.0));
    // Cell 1 expresses nothing at all.
    let err = genept_w(&matrix(&[&[1.0, 0.0], &[0.0, 0.0]], &["G1", "G2"]), &table)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "1 cells have no expression at all (the first: `cell1`); remove them first"
    );
}

#[test]
fn cell_sentences_list_the_most_expressed_genes() {
    let m = matrix(&[&[1.0, 5.0, 0.0, 5.0]], &["A", "B", "C", "D"]);
    assert_eq!(cell_sentences(&m, 2).unwrap(), ["B D"]);
    assert_eq!(cell_sentences(&m, 10).unwrap(), ["B D A"]);
    let sentences = run(embed_sentences(
        &m,
        2,
        &Letters::new(),
        &NoProgress,
        &CancelToken::new(),
    ))
    .unwrap();
    assert_eq!(sentences.dimension, 26);
    assert_eq!(sentences.cells, ["cell0"]);
}

#[test]
fn bad_matrices_are_clear_errors() {
    let table = three_genes();
    let err = genept_w(&matrix(&[&[1.0]], &["XYZ"]), &table)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("none of the matrix's 1 genes is in the gene embeddings (e.g. XYZ)"),
        "{err}"
    );
    let err = genept_w(&matrix(&[&[1.0, f32::NAN]], &["G1", "G2"]), &table)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cell `cell0`, gene `G2`: the value NaN is not a finite number ≥ 0"
    );
    let err = cell_sentences(&matrix(&[&[0.0, 0.0]], &["G1", "G2"]), 5)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("1 cells have no expression"), "{err}");
}

/// `per` cells around each of `centres` (2-D), a small seeded jitter apart.
fn blobs(centres: &[(f32, f32)], per: usize, prefix: &str) -> (CellEmbedding, Vec<String>) {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (c, &(x, y)) in centres.iter().enumerate() {
        for i in 0..per {
            let jitter = (i as f32 * 0.37).sin() * 0.5;
            values.extend([x + jitter, y - jitter]);
            labels.push(format!("type{c}"));
        }
    }
    let cells = (0..labels.len()).map(|i| format!("{prefix}{i}")).collect();
    (
        CellEmbedding {
            cells,
            dimension: 2,
            values,
        },
        labels,
    )
}

#[test]
fn labels_transfer_to_nearby_cells_and_kmeans_finds_the_groups() {
    let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let (reference, labels) = blobs(&centres, 20, "r");
    let (query, truth) = blobs(&centres, 7, "q");
    let transfer = transfer_labels(&reference, &labels, &query, 15).unwrap();
    assert_eq!(transfer.labels, truth);
    assert!(transfer.confidence.iter().all(|&c| c == 1.0));
    // A query cell halfway between two groups: its 30 neighbours are at least 10 of each.
    let between = CellEmbedding {
        cells: vec!["mid".into()],
        dimension: 2,
        values: vec![5.0, 0.0],
    };
    let t = transfer_labels(&reference, &labels, &between, 30).unwrap();
    assert!(t.confidence[0] <= 20.0 / 30.0 + 1e-6, "{t:?}");

    let clusters = kmeans(&reference, &KMeans::new(3)).unwrap();
    let ari = cellwright_eval::adjusted_rand_index(&labels, &clusters.assignment).unwrap();
    assert!((ari - 1.0).abs() < 1e-12, "{ari}");
    assert_eq!(kmeans(&reference, &KMeans::new(3)).unwrap(), clusters);
}

#[test]
fn mismatched_embeddings_are_clear_errors() {
    let (reference, labels) = blobs(&[(0.0, 0.0)], 5, "r");
    let query = CellEmbedding {
        cells: vec!["q".into()],
        dimension: 3,
        values: vec![0.0; 3],
    };
    let err = transfer_labels(&reference, &labels, &query, 3).unwrap_err();
    assert_eq!(
        err,
        AnnotateError::Dimension {
            reference: 2,
            query: 3
        }
    );
    let err = transfer_labels(&reference, &labels[..2], &reference, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 labels for 5 reference cells: one per cell is needed"
    );
    assert!(matches!(
        kmeans(&reference, &KMeans::new(6)),
        Err(AnnotateError::Zero { what: "clusters" })
    ));
}
