//! Gene embeddings from knowledge text, GenePT's idea: each gene is described in words from
//! the databases we ship (its full name, the names of its GO terms, the pathways and protein
//! complexes it belongs to), and the text is embedded with a sentence model. Genes that do the
//! same things get similar text, hence nearby vectors, with no expression data at all.
//!
//! The table is stored as safetensors: one `embeddings` tensor (genes × dimension, f32) and,
//! in the header, the gene order, the SHA-256 of each gene's text and the embedder's id. A
//! rebuild embeds only the genes whose text is new or changed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use cellwright_core::{CancelToken, Embedder, Progress};
use cellwright_data::genedb::{Aspect, GeneCard};
use cellwright_data::genesets::Collection;
use sha2::{Digest, Sha256};

/// Texts embedded per call of the embedder: a progress step.
const CHUNK: usize = 256;

/// Why gene embeddings could not be built, read or used (and why texts could not be
/// embedded, for cell sentences too).
#[derive(Debug, thiserror::Error)]
pub enum GeneEmbeddingError {
    #[error("the embedder failed: {0}")]
    Embedder(String),
    #[error("the embedder returned {got} vectors for {asked} texts")]
    Count { asked: usize, got: usize },
    #[error("the embedder returned vectors of {got} values, {expected} expected")]
    Dimension { expected: usize, got: usize },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cancelled")]
    Cancelled,
    #[error("no gene `{0}` in the gene embeddings")]
    UnknownGene(String),
}

/// One gene's description, keyed by symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneText {
    pub gene: String,
    pub text: String,
}

/// Describes every gene of `cards`: `SYMBOL: full name. Molecular function: …. Complexes: ….
/// Pathways: …. Biological process: …. Cellular component: ….` The most specific facts come
/// first, since the embedder reads a limited number of tokens. Each collection in `sets`
/// contributes its sets that contain the gene, under the collection's label.
pub fn knowledge_texts(cards: &[GeneCard], sets: &[(&str, &Collection)]) -> Vec<GeneText> {
    let mut memberships: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    for (c, (_, collection)) in sets.iter().enumerate() {
        for set in &collection.sets {
            for gene in &set.genes {
                memberships
                    .entry(gene.as_str())
                    .or_default()
                    .push((c, set.name.as_str()));
            }
        }
    }
    cards
        .iter()
        .map(|card| {
            let mut text = format!("{}: {}.", card.symbol, card.name);
            let mut part = |label: &str, items: &[&str]| {
                if !items.is_empty() {
                    text.push_str(&format!(" {label}: {}.", items.join("; ")));
                }
            };
            let go = |aspect| -> Vec<&str> {
                card.go
                    .get(&aspect)
                    .map(|t| t.iter().map(String::as_str).collect())
                    .unwrap_or_default()
            };
            part("Molecular function", &go(Aspect::MolecularFunction));
            let member = memberships.get(card.symbol.as_str());
            for (c, (label, _)) in sets.iter().enumerate() {
                let mut names: Vec<&str> = member
                    .into_iter()
                    .flatten()
                    .filter(|(of, _)| *of == c)
                    .map(|(_, name)| *name)
                    .collect();
                names.sort_unstable();
                names.dedup();
                part(label, &names);
            }
            part("Biological process", &go(Aspect::BiologicalProcess));
            part("Cellular component", &go(Aspect::CellularComponent));
            GeneText {
                gene: card.symbol.clone(),
                text,
            }
        })
        .collect()
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A table of gene vectors, one row per gene, L2-normalised by the embedder.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneEmbeddings {
    genes: Vec<String>,
    text_sha256: Vec<String>,
    embedder: String,
    dimension: usize,
    values: Vec<f32>,
    index: HashMap<String, usize>,
}

impl GeneEmbeddings {
    fn new(
        genes: Vec<String>,
        text_sha256: Vec<String>,
        embedder: String,
        dimension: usize,
        values: Vec<f32>,
    ) -> Self {
        let index = genes
            .iter()
            .enumerate()
            .map(|(i, g)| (g.to_uppercase(), i))
            .collect();
        Self {
            genes,
            text_sha256,
            embedder,
            dimension,
            values,
            index,
        }
    }

    /// Genes in table order.
    pub fn genes(&self) -> &[String] {
        &self.genes
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The embedder the vectors came from.
    pub fn embedder(&self) -> &str {
        &self.embedder
    }

    /// The row of `gene` (symbols match whatever their case).
    pub fn position(&self, gene: &str) -> Option<usize> {
        self.index.get(&gene.to_uppercase()).copied()
    }

    /// The vector of `gene`.
    pub fn get(&self, gene: &str) -> Option<&[f32]> {
        self.position(gene).map(|i| self.row(i))
    }

    /// All rows, row-major.
    pub(crate) fn values(&self) -> &[f32] {
        &self.values
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dimension..(i + 1) * self.dimension]
    }

    /// The `k` genes most similar to `gene` by cosine similarity, best first, `gene` itself
    /// left out.
    pub fn nearest(&self, gene: &str, k: usize) -> Result<Vec<(String, f32)>, GeneEmbeddingError> {
        let at = self
            .position(gene)
            .ok_or_else(|| GeneEmbeddingError::UnknownGene(gene.to_owned()))?;
        let query = self.row(at);
        let mut scored: Vec<(usize, f32)> = (0..self.genes.len())
            .filter(|&i| i != at)
            .map(|i| (i, cosine(query, self.row(i))))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
        scored.sort_by(order);
        Ok(scored
            .into_iter()
            .map(|(i, s)| (self.genes[i].clone(), s))
            .collect())
    }

    /// Writes the table as safetensors (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), GeneEmbeddingError> {
        let failed = |message: String| GeneEmbeddingError::File {
            path: path.display().to_string(),
            message,
        };
        let json = |v: &Vec<String>| serde_json::to_string(v).map_err(|e| failed(e.to_string()));
        let metadata = HashMap::from([
            ("genes".to_owned(), json(&self.genes)?),
            ("text_sha256".to_owned(), json(&self.text_sha256)?),
            ("embedder".to_owned(), self.embedder.clone()),
        ]);
        let bytes: Vec<u8> = self.values.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![self.genes.len(), self.dimension],
            &bytes,
        )
        .map_err(|e| failed(e.to_string()))?;
        // Written beside the target and renamed over it, so a crash never leaves half a table.
        let partial = path.with_extension("partial");
        safetensors::serialize_to_file([("embeddings", view)], Some(metadata), &partial)
            .map_err(|e| failed(e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| failed(e.to_string()))
    }

    /// Reads a table written by [`GeneEmbeddings::save`].
    pub fn load(path: &Path) -> Result<Self, GeneEmbeddingError> {
        let failed = |message: String| GeneEmbeddingError::File {
            path: path.display().to_string(),
            message,
        };
        let buffer = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let tensors = safetensors::SafeTensors::deserialize(&buffer)
            .map_err(|e| failed(format!("not a safetensors file: {e}")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&buffer)
            .map_err(|e| failed(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |key: &str| {
            meta.get(key)
                .cloned()
                .ok_or_else(|| failed(format!("the header has no `{key}`")))
        };
        let list = |key: &str| -> Result<Vec<String>, GeneEmbeddingError> {
            serde_json::from_str(&field(key)?).map_err(|e| failed(format!("`{key}`: {e}")))
        };
        let (genes, text_sha256, embedder) =
            (list("genes")?, list("text_sha256")?, field("embedder")?);
        let view = tensors
            .tensor("embeddings")
            .map_err(|e| failed(format!("no `embeddings` tensor: {e}")))?;
        let &[rows, dimension] = view.shape() else {
            return Err(failed(format!(
                "`embeddings` has shape {:?}, not genes × dimension",
                view.shape()
            )));
        };
        if view.dtype() != safetensors::Dtype::F32
            || rows != genes.len()
            || text_sha256.len() != rows
        {
            return Err(failed(format!(
                "`embeddings` is {:?} {rows} × {dimension} for {} genes and {} text hashes",
                view.dtype(),
                genes.len(),
                text_sha256.len()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Self::new(genes, text_sha256, embedder, dimension, values))
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let n = norm(a) * norm(b);
    if n > 0.0 { dot / n } else { 0.0 }
}

/// Embeds `texts` with `embedder` in chunks of [`CHUNK`], reporting progress under `message`
/// and stopping between chunks when cancelled; checks that one vector of the embedder's
/// dimension comes back per text.
pub(crate) async fn embed_texts(
    texts: &[String],
    embedder: &dyn Embedder,
    message: &str,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Vec<Vec<f32>>, GeneEmbeddingError> {
    let dimension = embedder.dimension();
    let total = texts.len() as u64;
    progress.report(0, Some(total), message);
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(CHUNK) {
        if cancel.is_cancelled() {
            return Err(GeneEmbeddingError::Cancelled);
        }
        let vectors = embedder
            .embed(chunk)
            .await
            .map_err(|e| GeneEmbeddingError::Embedder(e.to_string()))?;
        if vectors.len() != chunk.len() {
            return Err(GeneEmbeddingError::Count {
                asked: chunk.len(),
                got: vectors.len(),
            });
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != dimension) {
            return Err(GeneEmbeddingError::Dimension {
                expected: dimension,
                got: v.len(),
            });
        }
        out.extend(vectors);
        progress.report(out.len() as u64, Some(total), message);
    }
    Ok(out)
}

/// Embeds `texts` with `embedder`, reusing the rows of `previous` whose gene text is unchanged
/// (same embedder id, same text hash): only new or changed texts are embedded, in chunks, with
/// progress, and cancellable between chunks. The table follows the order of `texts`.
pub async fn build(
    texts: &[GeneText],
    embedder: &dyn Embedder,
    previous: Option<&GeneEmbeddings>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<GeneEmbeddings, GeneEmbeddingError> {
    build_in_steps(
        texts,
        embedder,
        previous,
        usize::MAX,
        progress,
        cancel,
        |_| Ok(()),
    )
    .await
}

/// [`build`], handing the table made so far to `keep` after every `step` newly embedded
/// texts (but the last), so that a long build that is stopped loses at most one step. The
/// partial tables hold the reused rows and the texts embedded so far, in the order of
/// `texts`.
pub async fn build_in_steps(
    texts: &[GeneText],
    embedder: &dyn Embedder,
    previous: Option<&GeneEmbeddings>,
    step: usize,
    progress: &dyn Progress,
    cancel: &CancelToken,
    mut keep: impl FnMut(&GeneEmbeddings) -> Result<(), GeneEmbeddingError>,
) -> Result<GeneEmbeddings, GeneEmbeddingError> {
    let dimension = embedder.dimension();
    let id = embedder.id();
    let hashes: Vec<String> = texts.iter().map(|t| digest(&t.text)).collect();
    let reusable: BTreeMap<&str, &[f32]> = previous
        .filter(|p| p.embedder == id && p.dimension == dimension)
        .map(|p| {
            p.genes
                .iter()
                .enumerate()
                .map(|(i, _)| (p.text_sha256[i].as_str(), p.row(i)))
                .collect()
        })
        .unwrap_or_default();
    let mut values = vec![0.0f32; texts.len() * dimension];
    let mut done = vec![false; texts.len()];
    let mut todo = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        match reusable.get(hash.as_str()) {
            Some(row) => {
                values[i * dimension..(i + 1) * dimension].copy_from_slice(row);
                done[i] = true;
            }
            None => todo.push(i),
        }
    }
    let table = |done: &[bool], values: &[f32]| {
        let rows: Vec<usize> = (0..texts.len()).filter(|&i| done[i]).collect();
        GeneEmbeddings::new(
            rows.iter().map(|&i| texts[i].gene.clone()).collect(),
            rows.iter().map(|&i| hashes[i].clone()).collect(),
            id.clone(),
            dimension,
            rows.iter()
                .flat_map(|&i| values[i * dimension..(i + 1) * dimension].iter().copied())
                .collect(),
        )
    };
    let steps: Vec<&[usize]> = todo.chunks(step.max(1)).collect();
    for (s, indices) in steps.iter().enumerate() {
        let batch: Vec<String> = indices.iter().map(|&i| texts[i].text.clone()).collect();
        let overall = Offset {
            inner: progress,
            before: (s * step) as u64,
            total: todo.len() as u64,
        };
        let vectors =
            embed_texts(&batch, embedder, "embedding gene texts", &overall, cancel).await?;
        for (&i, v) in indices.iter().zip(&vectors) {
            values[i * dimension..(i + 1) * dimension].copy_from_slice(v);
            done[i] = true;
        }
        if s + 1 < steps.len() {
            keep(&table(&done, &values))?;
        }
    }
    Ok(table(&done, &values))
}

/// Progress of one step reported as progress of the whole build.
struct Offset<'a> {
    inner: &'a dyn Progress,
    before: u64,
    total: u64,
}

impl Progress for Offset<'_> {
    fn report(&self, done: u64, _total: Option<u64>, message: &str) {
        self.inner
            .report(self.before + done, Some(self.total), message);
    }
}
