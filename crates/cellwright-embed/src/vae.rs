//! A variational autoencoder of cells in the design of scVI (Lopez et al., 2018), trained with
//! candle on the user's own matrix.
//!
//! The encoder maps a cell's expression to the mean and log-variance of a Gaussian over a small
//! latent space (one hidden layer, ReLU); the decoder maps a latent sample back to the
//! parameters of the expression's likelihood:
//!
//! - **counts** (every value a whole number ≥ 0): a negative binomial per gene, mean
//!   `ℓ · softmax(decoder)`, where `ℓ` is the cell's observed total, and one learned inverse
//!   dispersion `θ` per gene; the encoder reads `log1p` of the counts. This is scVI's model.
//! - **anything else** (log-normalised or scaled values, which the negative binomial cannot
//!   describe): a Gaussian per gene on the gene-standardised values with one learned variance
//!   per gene. Shipped data sets such as pbmc68k_reduced hold no counts, so a count model on
//!   them would be a model of numbers that were never counted.
//!
//! The loss is the negative evidence lower bound, the KL term warmed up linearly over the
//! first epochs, as scVI does. Training is Adam on mini-batches, stops when the held-out loss
//! has not improved for `patience` epochs, keeps the best weights and, if asked, writes them
//! to a safetensors checkpoint at every improvement. Every random draw (initial weights,
//! the held-out split, batch order, the reparameterisation noise) comes from one seeded
//! stream, so a seed gives the same model. A cell's embedding is the mean of its latent
//! Gaussian.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use cellwright_core::{CancelToken, Progress};
use cellwright_data::matrix::ExpressionMatrix;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cells::CellEmbedding;

/// The `format` field of a saved model's header.
const FORMAT: &str = "cellwright-vae/1";

/// Cells per forward pass at inference.
const INFERENCE_BLOCK: usize = 1024;

/// Why a VAE could not be trained, saved, loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum VaeError {
    #[error("the matrix has {0} cells; training needs at least 4")]
    TooFewCells(usize),
    #[error("the matrix has no genes")]
    NoGenes,
    #[error("cell `{cell}`, gene `{gene}`: the value {value} is not a finite number")]
    NotFinite {
        cell: String,
        gene: String,
        value: f32,
    },
    #[error(
        "cell `{cell}`, gene `{gene}`: the value {value} is not a count (a whole number ≥ 0); use the Gaussian likelihood for normalised or scaled values"
    )]
    NotCounts {
        cell: String,
        gene: String,
        value: f32,
    },
    #[error(
        "{count} cells have no counts at all (the first: `{first}`); remove them before training a count model"
    )]
    EmptyCells { count: usize, first: String },
    #[error(
        "the matrix lacks {missing} of the model's {total} genes (e.g. {examples}); a VAE embeds only matrices with the genes it was trained on"
    )]
    MissingGenes {
        missing: usize,
        total: usize,
        examples: String,
    },
    #[error("{0}")]
    Settings(&'static str),
    #[error("the held-out loss became {loss} at epoch {epoch}; try a smaller learning rate")]
    Diverged { loss: f64, epoch: usize },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("cancelled")]
    Cancelled,
}

/// The distribution of a gene's value given the latent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// Counts: scVI's negative binomial.
    NegativeBinomial,
    /// Continuous values: a Gaussian on gene-standardised values.
    Gaussian,
}

impl Likelihood {
    /// The negative binomial when every value is a whole number ≥ 0, else the Gaussian.
    pub fn for_matrix(m: &ExpressionMatrix) -> Self {
        if m.is_counts() {
            Self::NegativeBinomial
        } else {
            Self::Gaussian
        }
    }
}

/// Settings of the VAE and its training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VaeSettings {
    /// Dimension of the latent space (the embedding).
    pub latent: usize,
    /// Units of the encoder's and the decoder's hidden layer.
    pub hidden: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Cells per gradient step.
    pub batch: usize,
    /// Most passes over the training cells.
    pub max_epochs: usize,
    /// Epochs without a better held-out loss before training stops (counted after warm-up).
    pub patience: usize,
    /// Share of the cells held out to decide when to stop.
    pub validation: f64,
    /// Epochs over which the KL term's weight rises from 0 to 1.
    pub kl_warmup: usize,
    /// The likelihood; chosen from the data when absent (see [`Likelihood::for_matrix`]).
    pub likelihood: Option<Likelihood>,
}

impl Default for VaeSettings {
    fn default() -> Self {
        Self {
            latent: 10,
            hidden: 128,
            learning_rate: 1e-3,
            batch: 128,
            max_epochs: 400,
            patience: 20,
            validation: 0.1,
            kl_warmup: 50,
            likelihood: None,
        }
    }
}

impl VaeSettings {
    fn check(&self) -> Result<(), VaeError> {
        let problems = [
            (self.latent == 0, "vae.latent must be at least 1"),
            (self.hidden == 0, "vae.hidden must be at least 1"),
            (
                !(self.learning_rate > 0.0 && self.learning_rate.is_finite()),
                "vae.learning_rate must be a number > 0",
            ),
            (self.batch == 0, "vae.batch must be at least 1"),
            (self.max_epochs == 0, "vae.max_epochs must be at least 1"),
            (
                !(self.validation > 0.0 && self.validation < 1.0),
                "vae.validation must be in (0, 1)",
            ),
        ];
        match problems.into_iter().find(|(bad, _)| *bad) {
            Some((_, message)) => Err(VaeError::Settings(message)),
            None => Ok(()),
        }
    }
}

/// One epoch of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    /// Mean loss per training cell (negative ELBO at this epoch's KL weight).
    pub training: f64,
    /// Mean negative ELBO per held-out cell, KL at full weight.
    pub held_out: f64,
}

/// What training did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingReport {
    pub likelihood: Likelihood,
    /// The held-out loss of the untrained model (what every epoch improves on).
    pub initial_held_out: f64,
    pub epochs: Vec<Epoch>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// True when the held-out loss stopped improving before `max_epochs`.
    pub stopped_early: bool,
    pub seconds: f64,
}

/// Parameter names in a fixed order: initialisation, checkpoints and snapshots follow it.
const PARAMETERS: [&str; 11] = [
    "encoder.weight",
    "encoder.bias",
    "mean.weight",
    "mean.bias",
    "log_variance.weight",
    "log_variance.bias",
    "decoder.weight",
    "decoder.bias",
    "output.weight",
    "output.bias",
    "gene",
];

/// A trained VAE: its genes (in input order), likelihood, settings and weights.
pub struct Vae {
    genes: Vec<String>,
    likelihood: Likelihood,
    settings: VaeSettings,
    /// Per-gene centre and scale of the Gaussian model's standardisation (empty for counts).
    center: Vec<f32>,
    scale: Vec<f32>,
    params: BTreeMap<&'static str, Var>,
}

impl std::fmt::Debug for Vae {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vae")
            .field("genes", &self.genes.len())
            .field("likelihood", &self.likelihood)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// `ln Γ(z)` for `z > 0`, element-wise and differentiable: Stirling's series at `z + 6`,
/// shifted back with `ln Γ(z) = ln Γ(z + 6) − Σ_{k<6} ln(z + k)`; error below 1e-9 in f64.
fn lgamma(z: &Tensor) -> candle_core::Result<Tensor> {
    let mut shift = z.log()?;
    for k in 1..6 {
        shift = (shift + z.affine(1.0, f64::from(k))?.log()?)?;
    }
    let s = z.affine(1.0, 6.0)?;
    let inv = s.recip()?;
    let inv2 = inv.sqr()?;
    // 1/(12s) − 1/(360s³) + 1/(1260s⁵) − 1/(1680s⁷)
    let series = (&inv
        * (inv2.affine(-1.0 / 1680.0, 1.0 / 1260.0)? * &inv2)?
            .affine(-1.0, 1.0 / 360.0)?
            .mul(&inv2)?
            .affine(-1.0, 1.0 / 12.0)?)?;
    let stirling = ((s.affine(1.0, -0.5)? * s.log()?)? - &s)?
        .affine(1.0, 0.5 * (2.0 * std::f64::consts::PI).ln())?;
    (stirling + series)? - shift
}

/// The training data as tensors, genes in model order.
struct Batch {
    /// What the encoder reads: `log1p` counts, or standardised values.
    input: Tensor,
    /// What the likelihood scores: counts, or standardised values.
    target: Tensor,
    /// log of each cell's total count (`cells × 1`; zeros for the Gaussian).
    log_library: Tensor,
}

impl Vae {
    pub fn genes(&self) -> &[String] {
        &self.genes
    }

    pub fn likelihood(&self) -> Likelihood {
        self.likelihood
    }

    pub fn settings(&self) -> &VaeSettings {
        &self.settings
    }

    fn param(&self, name: &str) -> &Tensor {
        self.params[name].as_tensor()
    }

    fn linear(&self, x: &Tensor, layer: &str) -> candle_core::Result<Tensor> {
        x.matmul(self.param(&format!("{layer}.weight")))?
            .broadcast_add(self.param(&format!("{layer}.bias")))
    }

    /// The latent mean and log-variance of each cell.
    fn encode(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let h = self.linear(input, "encoder")?.relu()?;
        let log_variance = self.linear(&h, "log_variance")?.clamp(-12.0, 12.0)?;
        Ok((self.linear(&h, "mean")?, log_variance))
    }

    /// The decoder's output: log of the mean for counts, the mean for the Gaussian.
    fn decode(&self, z: &Tensor, log_library: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.linear(&self.linear(z, "decoder")?.relu()?, "output")?;
        match self.likelihood {
            Likelihood::NegativeBinomial => {
                let log_scale = candle_nn::ops::log_softmax(&out, D::Minus1)?;
                log_scale.broadcast_add(log_library)
            }
            Likelihood::Gaussian => Ok(out),
        }
    }

    /// Negative log-likelihood of `target` per cell (`cells`).
    fn reconstruction_loss(
        &self,
        decoded: &Tensor,
        target: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let gene = self.param("gene");
        let log_likelihood = match self.likelihood {
            Likelihood::NegativeBinomial => {
                // ln NB(x; μ, θ) = lnΓ(x+θ) − lnΓ(θ) − lnΓ(x+1) + θ ln(θ/(θ+μ)) + x ln(μ/(θ+μ))
                let (log_mu, log_theta) = (decoded, gene);
                let theta = log_theta.exp()?;
                let log_sum = (log_mu.exp()?.broadcast_add(&theta)? + 1e-8)?.log()?;
                let x_theta = target.broadcast_add(&theta)?;
                let gammas = ((lgamma(&x_theta)?.broadcast_sub(&lgamma(&theta)?))?
                    - lgamma(&target.affine(1.0, 1.0)?)?)?;
                let theta_term = log_sum.broadcast_sub(log_theta)?.broadcast_mul(&theta)?;
                let x_term = (target * (log_mu - &log_sum)?)?;
                ((gammas - theta_term)? + x_term)?
            }
            Likelihood::Gaussian => {
                // ln N(x; m, σ²) = −½ ((x−m)² / σ² + ln σ² + ln 2π)
                let log_variance = gene;
                let squared = (target - decoded)?.sqr()?;
                squared
                    .broadcast_mul(&log_variance.neg()?.exp()?)?
                    .broadcast_add(log_variance)?
                    .affine(-0.5, -0.5 * (2.0 * std::f64::consts::PI).ln())?
            }
        };
        log_likelihood.sum(D::Minus1)?.neg()
    }

    /// Mean loss over the batch: reconstruction plus `kl_weight` × KL(q(z|x) ‖ N(0, I)).
    /// `noise` is the reparameterisation's standard normal draw, or `None` to decode the mean.
    fn loss(
        &self,
        b: &Batch,
        noise: Option<&Tensor>,
        kl_weight: f64,
    ) -> candle_core::Result<Tensor> {
        let (mean, log_variance) = self.encode(&b.input)?;
        let z = match noise {
            Some(eps) => (&mean + (log_variance.affine(0.5, 0.0)?.exp()? * eps)?)?,
            None => mean.clone(),
        };
        let reconstruction =
            self.reconstruction_loss(&self.decode(&z, &b.log_library)?, &b.target)?;
        // KL = −½ Σ (1 + ln σ² − μ² − σ²)
        let kl = ((log_variance.exp()? + mean.sqr()?)? - log_variance)?
            .affine(0.5, -0.5)?
            .sum(D::Minus1)?;
        (reconstruction + (kl * kl_weight)?)?.mean_all()
    }

    /// The matrix's columns for the model's genes, or which are missing.
    fn columns(&self, m: &ExpressionMatrix) -> Result<Vec<usize>, VaeError> {
        let positions: Vec<Option<usize>> = self.genes.iter().map(|g| m.gene_position(g)).collect();
        let missing: Vec<&String> = self
            .genes
            .iter()
            .zip(&positions)
            .filter(|(_, p)| p.is_none())
            .map(|(g, _)| g)
            .collect();
        if missing.is_empty() {
            Ok(positions.into_iter().flatten().collect())
        } else {
            Err(VaeError::MissingGenes {
                missing: missing.len(),
                total: self.genes.len(),
                examples: missing
                    .iter()
                    .take(5)
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// The model's inputs for the cells `rows` of `values` (cells × model genes, row-major).
    fn batch(&self, values: &[f32], rows: &[usize], dev: &Device) -> candle_core::Result<Batch> {
        let g = self.genes.len();
        let mut raw = Vec::with_capacity(rows.len() * g);
        for &r in rows {
            raw.extend_from_slice(&values[r * g..(r + 1) * g]);
        }
        let n = rows.len();
        match self.likelihood {
            Likelihood::NegativeBinomial => {
                let library: Vec<f32> = raw
                    .chunks(g)
                    .map(|row| row.iter().map(|&v| f64::from(v)).sum::<f64>().ln() as f32)
                    .collect();
                let input: Vec<f32> = raw.iter().map(|v| v.ln_1p()).collect();
                Ok(Batch {
                    input: Tensor::from_vec(input, (n, g), dev)?,
                    target: Tensor::from_vec(raw, (n, g), dev)?,
                    log_library: Tensor::from_vec(library, (n, 1), dev)?,
                })
            }
            Likelihood::Gaussian => {
                for row in raw.chunks_mut(g) {
                    for ((v, c), s) in row.iter_mut().zip(&self.center).zip(&self.scale) {
                        *v = (*v - c) / s;
                    }
                }
                let input = Tensor::from_vec(raw, (n, g), dev)?;
                Ok(Batch {
                    target: input.clone(),
                    input,
                    log_library: Tensor::zeros((n, 1), DType::F32, dev)?,
                })
            }
        }
    }

    /// The matrix as dense rows over the model's genes, checked.
    fn values(&self, m: &ExpressionMatrix) -> Result<Vec<f32>, VaeError> {
        let columns = self.columns(m)?;
        let dense = m.x().to_dense();
        let mut values = Vec::with_capacity(dense.nrows() * columns.len());
        for (i, row) in dense.rows().into_iter().enumerate() {
            for (&j, gene) in columns.iter().zip(&self.genes) {
                let v = row[j];
                let problem = if !v.is_finite() {
                    Some(VaeError::NotFinite {
                        cell: m.cells()[i].clone(),
                        gene: gene.clone(),
                        value: v,
                    })
                } else if self.likelihood == Likelihood::NegativeBinomial
                    && (v < 0.0 || v.fract() != 0.0)
                {
                    Some(VaeError::NotCounts {
                        cell: m.cells()[i].clone(),
                        gene: gene.clone(),
                        value: v,
                    })
                } else {
                    None
                };
                if let Some(e) = problem {
                    return Err(e);
                }
                values.push(v);
            }
        }
        if self.likelihood == Likelihood::NegativeBinomial {
            let g = self.genes.len().max(1);
            let empty: Vec<usize> = (0..dense.nrows())
                .filter(|&i| values[i * g..(i + 1) * g].iter().all(|&v| v == 0.0))
                .collect();
            if let Some(&first) = empty.first() {
                return Err(VaeError::EmptyCells {
                    count: empty.len(),
                    first: m.cells()[first].clone(),
                });
            }
        }
        Ok(values)
    }

    /// Runs `f` on blocks of the matrix's cells and stacks the results (`cells × ·`).
    fn per_block(
        &self,
        m: &ExpressionMatrix,
        f: impl Fn(&Batch) -> candle_core::Result<Tensor>,
    ) -> Result<Vec<f32>, VaeError> {
        let values = self.values(m)?;
        let n = m.shape().0;
        let dev = Device::Cpu;
        let all: Vec<usize> = (0..n).collect();
        let mut out = Vec::new();
        for block in all.chunks(INFERENCE_BLOCK) {
            out.extend(
                f(&self.batch(&values, block, &dev)?)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
        Ok(out)
    }

    /// Each cell's embedding: the mean of its latent Gaussian.
    pub fn embed(&self, m: &ExpressionMatrix) -> Result<CellEmbedding, VaeError> {
        let values = self.per_block(m, |b| Ok(self.encode(&b.input)?.0))?;
        Ok(CellEmbedding {
            cells: m.cells().to_vec(),
            dimension: self.settings.latent,
            values,
        })
    }

    /// The decoder's expected value of every gene (model order) in every cell, decoded from the
    /// latent mean, in the data's own units: counts for the count model, the input's values
    /// for the Gaussian.
    pub fn reconstruct(&self, m: &ExpressionMatrix) -> Result<Vec<f32>, VaeError> {
        let mut values = self.per_block(m, |b| {
            let decoded = self.decode(&self.encode(&b.input)?.0, &b.log_library)?;
            match self.likelihood {
                Likelihood::NegativeBinomial => decoded.exp(),
                Likelihood::Gaussian => Ok(decoded),
            }
        })?;
        if self.likelihood == Likelihood::Gaussian {
            let g = self.genes.len();
            for row in values.chunks_mut(g) {
                for ((v, c), s) in row.iter_mut().zip(&self.center).zip(&self.scale) {
                    *v = *v * s + c;
                }
            }
        }
        Ok(values)
    }

    fn snapshot(&self) -> candle_core::Result<Vec<Tensor>> {
        self.params.values().map(|v| v.as_tensor().copy()).collect()
    }

    fn restore(&self, best: &[Tensor]) -> candle_core::Result<()> {
        for (var, t) in self.params.values().zip(best) {
            var.set(t)?;
        }
        Ok(())
    }

    /// Writes the model as safetensors: the weights as tensors, and in the header the genes,
    /// likelihood, settings and standardisation. Written beside `path` and renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), VaeError> {
        let failed = |message: String| VaeError::File {
            path: path.display().to_string(),
            message,
        };
        let json = |v: serde_json::Result<String>| v.map_err(|e| failed(e.to_string()));
        let metadata = HashMap::from([
            ("format".to_owned(), FORMAT.to_owned()),
            (
                "genes".to_owned(),
                json(serde_json::to_string(&self.genes))?,
            ),
            (
                "likelihood".to_owned(),
                json(serde_json::to_string(&self.likelihood))?,
            ),
            (
                "settings".to_owned(),
                json(serde_json::to_string(&self.settings))?,
            ),
            (
                "center".to_owned(),
                json(serde_json::to_string(&self.center))?,
            ),
            (
                "scale".to_owned(),
                json(serde_json::to_string(&self.scale))?,
            ),
        ]);
        let tensors: Vec<(&str, Tensor)> = self
            .params
            .iter()
            .map(|(name, var)| (*name, var.as_tensor().clone()))
            .collect();
        let partial = path.with_extension("partial");
        safetensors::serialize_to_file(tensors, Some(metadata), &partial)
            .map_err(|e| failed(e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| failed(e.to_string()))
    }

    /// Reads a model written by [`Vae::save`].
    pub fn load(path: &Path) -> Result<Self, VaeError> {
        let failed = |message: String| VaeError::File {
            path: path.display().to_string(),
            message,
        };
        let buffer = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&buffer)
            .map_err(|e| failed(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(failed(format!(
                "not a cellwright VAE (no `format: {FORMAT}` in the header)"
            )));
        }
        fn field<T: serde::de::DeserializeOwned>(
            meta: &HashMap<String, String>,
            key: &str,
        ) -> Result<T, String> {
            let text = meta.get(key).ok_or(format!("the header has no `{key}`"))?;
            serde_json::from_str(text).map_err(|e| format!("`{key}`: {e}"))
        }
        let genes: Vec<String> = field(&meta, "genes").map_err(failed)?;
        let likelihood: Likelihood = field(&meta, "likelihood").map_err(failed)?;
        let settings: VaeSettings = field(&meta, "settings").map_err(failed)?;
        let center: Vec<f32> = field(&meta, "center").map_err(failed)?;
        let scale: Vec<f32> = field(&meta, "scale").map_err(failed)?;
        let mut tensors = candle_core::safetensors::load_buffer(&buffer, &Device::Cpu)
            .map_err(|e| failed(e.to_string()))?;
        let shapes = shapes(genes.len(), &settings);
        let mut params = BTreeMap::new();
        for (name, shape) in PARAMETERS.into_iter().zip(shapes) {
            let t = tensors
                .remove(name)
                .ok_or_else(|| failed(format!("no `{name}` tensor")))?;
            if t.dims() != shape.as_slice() || t.dtype() != DType::F32 {
                return Err(failed(format!(
                    "`{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.dims()
                )));
            }
            params.insert(name, Var::from_tensor(&t)?);
        }
        let standardised = likelihood == Likelihood::Gaussian;
        if standardised && (center.len() != genes.len() || scale.len() != genes.len()) {
            return Err(failed(
                "the standardisation does not match the genes".into(),
            ));
        }
        Ok(Self {
            genes,
            likelihood,
            settings,
            center,
            scale,
            params,
        })
    }
}

/// Shapes of [`PARAMETERS`]: weights stored `in × out`.
fn shapes(genes: usize, s: &VaeSettings) -> [Vec<usize>; 11] {
    let (g, h, l) = (genes, s.hidden, s.latent);
    [
        vec![g, h],
        vec![h],
        vec![h, l],
        vec![l],
        vec![h, l],
        vec![l],
        vec![l, h],
        vec![h],
        vec![h, g],
        vec![g],
        vec![g],
    ]
}

/// Trains a VAE on every cell of `m` (see the module docs). With `checkpoint`, the best
/// weights so far are written there after every improvement.
pub fn train_vae(
    m: &ExpressionMatrix,
    settings: &VaeSettings,
    seed: u64,
    checkpoint: Option<&Path>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(Vae, TrainingReport), VaeError> {
    settings.check()?;
    let started = Instant::now();
    let (cells, genes) = m.shape();
    if cells < 4 {
        return Err(VaeError::TooFewCells(cells));
    }
    if genes == 0 {
        return Err(VaeError::NoGenes);
    }
    let likelihood = settings
        .likelihood
        .unwrap_or_else(|| Likelihood::for_matrix(m));
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // Initial weights: uniform in ±1/√fan_in, as PyTorch's linear layers; the per-gene
    // parameter starts at 0 (θ = 1, or unit variance).
    let mut params = BTreeMap::new();
    for (name, shape) in PARAMETERS.into_iter().zip(shapes(genes, settings)) {
        let size: usize = shape.iter().product();
        let values: Vec<f32> = if name == "gene" {
            vec![0.0; size]
        } else {
            let fan_in = match name.split('.').next() {
                Some("encoder") => genes,
                Some("decoder") => settings.latent,
                _ => settings.hidden,
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..size)
                .map(|_| ((rng.r#gen::<f64>() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        params.insert(name, Var::from_vec(values, shape, &dev)?);
    }
    let mut vae = Vae {
        genes: m.genes().to_vec(),
        likelihood,
        settings: settings.clone(),
        center: Vec::new(),
        scale: Vec::new(),
        params,
    };
    let raw = vae.values(m)?;
    if likelihood == Likelihood::Gaussian {
        (vae.center, vae.scale) = standardisation(&raw, genes);
    }

    let mut order: Vec<usize> = (0..cells).collect();
    order.shuffle(&mut rng);
    let held_out = ((cells as f64 * settings.validation).round() as usize).clamp(1, cells - 1);
    let (validation, training) = order.split_at(held_out);
    let training_data = vae.batch(&raw, training, &dev)?;
    let validation_data = vae.batch(&raw, validation, &dev)?;
    let mut adam = AdamW::new(
        vae.params.values().cloned().collect(),
        ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;

    let mut report = TrainingReport {
        likelihood,
        initial_held_out: f64::from(vae.loss(&validation_data, None, 1.0)?.to_scalar::<f32>()?),
        epochs: Vec::new(),
        best_epoch: 0,
        stopped_early: false,
        seconds: 0.0,
    };
    let mut best = (f64::INFINITY, vae.snapshot()?);
    let mut batch_order: Vec<u32> = (0..training.len() as u32).collect();
    for epoch in 1..=settings.max_epochs {
        if cancel.is_cancelled() {
            return Err(VaeError::Cancelled);
        }
        let kl_weight = if settings.kl_warmup == 0 {
            1.0
        } else {
            (epoch as f64 / settings.kl_warmup as f64).min(1.0)
        };
        batch_order.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in batch_order.chunks(settings.batch) {
            let index = Tensor::new(chunk, &dev)?;
            let b = Batch {
                input: training_data.input.index_select(&index, 0)?,
                target: training_data.target.index_select(&index, 0)?,
                log_library: training_data.log_library.index_select(&index, 0)?,
            };
            let noise: Vec<f32> = (0..chunk.len() * settings.latent)
                .map(|_| rng.sample(rand_distr::StandardNormal))
                .collect();
            let noise = Tensor::from_vec(noise, (chunk.len(), settings.latent), &dev)?;
            let loss = vae.loss(&b, Some(&noise), kl_weight)?;
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            adam.backward_step(&loss)?;
        }
        let held = f64::from(vae.loss(&validation_data, None, 1.0)?.to_scalar::<f32>()?);
        if !held.is_finite() {
            return Err(VaeError::Diverged { loss: held, epoch });
        }
        report.epochs.push(Epoch {
            epoch,
            training: total / training.len() as f64,
            held_out: held,
        });
        progress.report(
            epoch as u64,
            Some(settings.max_epochs as u64),
            &format!("training the VAE (held-out loss {held:.1})"),
        );
        if held < best.0 {
            best = (held, vae.snapshot()?);
            report.best_epoch = epoch;
            if let Some(path) = checkpoint {
                vae.save(path)?;
            }
        } else if epoch > settings.kl_warmup
            && epoch - report.best_epoch.max(settings.kl_warmup) >= settings.patience
        {
            report.stopped_early = true;
            break;
        }
    }
    vae.restore(&best.1)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok((vae, report))
}

/// Per-gene mean and standard deviation (1 for a constant gene) of row-major `values`.
fn standardisation(values: &[f32], genes: usize) -> (Vec<f32>, Vec<f32>) {
    let cells = values.len() / genes;
    let mut sum = vec![0.0f64; genes];
    let mut squares = vec![0.0f64; genes];
    for row in values.chunks(genes) {
        for (g, &v) in row.iter().enumerate() {
            sum[g] += f64::from(v);
            squares[g] += f64::from(v) * f64::from(v);
        }
    }
    let n = cells as f64;
    sum.iter()
        .zip(&squares)
        .map(|(&s, &q)| {
            let mean = s / n;
            let sd = (q / n - mean * mean).max(0.0).sqrt();
            (mean as f32, if sd > 1e-6 { sd as f32 } else { 1.0 })
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use cellwright_core::NoProgress;
    use cellwright_data::matrix::Values;
    use ndarray::Array2;
    use rand_distr::Distribution;

    use super::*;

    #[test]
    fn lgamma_matches_known_values() {
        let z = Tensor::new(&[1.0f64, 0.5, 2.0, 10.0, 0.01, 1e4], &Device::Cpu).unwrap();
        let got = lgamma(&z).unwrap().to_vec1::<f64>().unwrap();
        let want = [
            0.0,
            0.572_364_942_924_700_1,
            0.0,
            12.801_827_480_081_469,
            4.599_479_878_042_022,
            82_099.717_496_442_38,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    /// Two cell types over 40 genes, Poisson counts: type A expresses genes 0..20 highly, B
    /// genes 20..40, with a varying library size.
    fn two_types(cells: usize, seed: u64) -> (ExpressionMatrix, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let genes = 40;
        let mut x = Array2::<f32>::zeros((cells, genes));
        let mut types = Vec::new();
        for c in 0..cells {
            let t = c % 2;
            types.push(t);
            let depth = 0.5 + rng.r#gen::<f64>();
            for g in 0..genes {
                let high = (g < 20) == (t == 0);
                let rate = depth * if high { 8.0 } else { 1.0 } * (1.0 + (g % 5) as f64 * 0.3);
                x[(c, g)] = rand_distr::Poisson::new(rate).unwrap().sample(&mut rng) as f32;
            }
        }
        let m = ExpressionMatrix::new(
            Values::Dense(x),
            (0..cells).map(|c| format!("cell{c}")).collect(),
            (0..genes).map(|g| format!("G{g}")).collect(),
        )
        .unwrap();
        (m, types)
    }

    fn small() -> VaeSettings {
        VaeSettings {
            latent: 4,
            hidden: 32,
            learning_rate: 3e-3,
            batch: 64,
            max_epochs: 60,
            patience: 10,
            kl_warmup: 10,
            ..VaeSettings::default()
        }
    }

    fn train(m: &ExpressionMatrix, s: &VaeSettings, seed: u64) -> (Vae, TrainingReport) {
        train_vae(m, s, seed, None, &NoProgress, &CancelToken::new()).unwrap()
    }

    /// Mean squared error on log1p(counts scaled to 100 per cell) of `predicted` vs `m`.
    fn log_error(m: &ExpressionMatrix, predicted: &[f32]) -> (f64, f64) {
        let x = m.x().to_dense();
        let g = x.ncols();
        let norm = |row: &[f32]| -> Vec<f64> {
            let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
            row.iter()
                .map(|&v| (f64::from(v) / total * 100.0).ln_1p())
                .collect()
        };
        let observed: Vec<Vec<f64>> = x.rows().into_iter().map(|r| norm(&r.to_vec())).collect();
        let mean: Vec<f64> = (0..g)
            .map(|j| observed.iter().map(|r| r[j]).sum::<f64>() / observed.len() as f64)
            .collect();
        let (mut model, mut baseline) = (0.0, 0.0);
        for (i, row) in observed.iter().enumerate() {
            let p = norm(&predicted[i * g..(i + 1) * g]);
            for j in 0..g {
                model += (p[j] - row[j]).powi(2);
                baseline += (mean[j] - row[j]).powi(2);
            }
        }
        (model, baseline)
    }

    #[test]
    fn the_count_model_learns_reconstructs_better_than_the_mean_and_separates_types() {
        let (m, types) = two_types(300, 1);
        assert_eq!(Likelihood::for_matrix(&m), Likelihood::NegativeBinomial);
        let (vae, report) = train(&m, &small(), 3);
        assert_eq!(report.likelihood, Likelihood::NegativeBinomial);
        let (initial, first) = (report.initial_held_out, report.epochs[0].held_out);
        let best = report.epochs[report.best_epoch - 1].held_out;
        assert!(
            first < initial && best < 0.85 * first,
            "held-out loss {initial} → {first} → {best}"
        );
        let (model, baseline) = log_error(&m, &vae.reconstruct(&m).unwrap());
        assert!(model < 0.5 * baseline, "model {model} vs mean {baseline}");
        // Each cell's nearest other cell in the latent space has its type.
        let e = vae.embed(&m).unwrap();
        assert_eq!((e.cells.len(), e.dimension), (300, 4));
        let nearest_agrees = (0..300)
            .filter(|&i| {
                let d = |j: usize| -> f32 {
                    e.row(i)
                        .iter()
                        .zip(e.row(j))
                        .map(|(a, b)| (a - b).powi(2))
                        .sum()
                };
                let j = (0..300)
                    .filter(|&j| j != i)
                    .min_by(|&a, &b| d(a).total_cmp(&d(b)));
                j.is_some_and(|j| types[j] == types[i])
            })
            .count();
        assert!(nearest_agrees >= 285, "{nearest_agrees} of 300");
    }

    #[test]
    fn the_gaussian_model_fits_continuous_values() {
        let (mut m, _) = two_types(200, 2);
        m.normalize_total(Some(100.0));
        m.log1p();
        assert_eq!(Likelihood::for_matrix(&m), Likelihood::Gaussian);
        let (vae, report) = train(&m, &small(), 5);
        assert_eq!(vae.likelihood(), Likelihood::Gaussian);
        assert!(report.epochs[report.best_epoch - 1].held_out < report.epochs[0].held_out);
        let x = m.x().to_dense();
        let predicted = vae.reconstruct(&m).unwrap();
        let g = x.ncols();
        let (mut model, mut baseline) = (0.0f64, 0.0f64);
        for j in 0..g {
            let col = x.column(j);
            let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / col.len() as f64;
            for (i, &v) in col.iter().enumerate() {
                model += (f64::from(predicted[i * g + j]) - f64::from(v)).powi(2);
                baseline += (mean - f64::from(v)).powi(2);
            }
        }
        assert!(model < 0.7 * baseline, "model {model} vs mean {baseline}");
    }

    #[test]
    fn a_seed_gives_the_same_model_and_a_checkpoint_reloads_it() {
        let (m, _) = two_types(120, 3);
        let s = VaeSettings {
            max_epochs: 8,
            ..small()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vae.safetensors");
        let (a, _) = train_vae(&m, &s, 11, Some(&path), &NoProgress, &CancelToken::new()).unwrap();
        let (b, _) = train(&m, &s, 11);
        let (c, _) = train(&m, &s, 12);
        let ea = a.embed(&m).unwrap();
        assert_eq!(ea, b.embed(&m).unwrap());
        assert_ne!(ea, c.embed(&m).unwrap());
        let loaded = Vae::load(&path).unwrap();
        assert_eq!(loaded.genes(), a.genes());
        assert_eq!(loaded.embed(&m).unwrap(), ea);
        // Genes in another order are matched by name.
        let mut names: Vec<&str> = m.genes().iter().map(String::as_str).collect();
        names.reverse();
        let shuffled = m.select_genes(&names).unwrap();
        assert_eq!(loaded.embed(&shuffled).unwrap(), ea);
    }

    #[test]
    fn bad_input_is_named() {
        let (m, _) = two_types(20, 4);
        let err = |m: &ExpressionMatrix, s: &VaeSettings| {
            train_vae(m, s, 0, None, &NoProgress, &CancelToken::new())
                .unwrap_err()
                .to_string()
        };
        let missing = m.select_genes(&["G0", "G1"]).unwrap();
        let (vae, _) = train(
            &m,
            &VaeSettings {
                max_epochs: 1,
                ..small()
            },
            0,
        );
        let e = vae.embed(&missing).unwrap_err().to_string();
        assert!(
            e.contains("lacks 38 of the model's 40 genes") && e.contains("`G2`"),
            "{e}"
        );

        let mut scaled = m.clone();
        scaled.log1p();
        let forced = VaeSettings {
            likelihood: Some(Likelihood::NegativeBinomial),
            ..small()
        };
        assert!(err(&scaled, &forced).contains("is not a count"));
        let few = m.select_cells(&["cell0", "cell1"]).unwrap();
        assert!(err(&few, &small()).contains("2 cells"));
        let bad = VaeSettings {
            latent: 0,
            ..small()
        };
        assert!(err(&m, &bad).contains("vae.latent"));

        let mut x = m.x().to_dense();
        x.row_mut(3).fill(0.0);
        let empty = ExpressionMatrix::new(Values::Dense(x), m.cells().to_vec(), m.genes().to_vec())
            .unwrap();
        assert!(
            err(&empty, &small()).contains("1 cells have no counts at all (the first: `cell3`)")
        );

        let cancel = CancelToken::new();
        cancel.cancel();
        let cancelled = train_vae(&m, &small(), 0, None, &NoProgress, &cancel);
        assert!(matches!(cancelled, Err(VaeError::Cancelled)));
    }
}
