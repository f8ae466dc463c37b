//! The baselines every model must beat, fitted on the training groups of a split: no change,
//! the mean training delta, the sum of the items' single deltas (additive), and the linear
//! model of Ahlmann-Eltze et al. (2025): ridge regression (λ = 0.1) between 10-dimensional
//! PCA embeddings of the genes, taken from the training data.

use std::collections::HashMap;

use cellwright_sim::Perturbation;
use faer::Mat;
use faer::linalg::solvers::Solve;

use crate::data::{Direction, Item, PerturbError, ScreenData, gene_index, items};

/// A fitted model: a perturbation's predicted change from control, one value per gene.
pub trait Predictor: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError>;
}

/// Predicts no change.
#[derive(Debug, Clone)]
pub struct NoChange {
    genes: usize,
}

impl NoChange {
    pub fn fit(data: &ScreenData) -> Self {
        Self {
            genes: data.genes.len(),
        }
    }
}

impl Predictor for NoChange {
    fn name(&self) -> &str {
        "no_change"
    }

    fn predict(&self, _: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        Ok(vec![0.0; self.genes])
    }
}

fn training_groups(data: &ScreenData, train: &[usize]) -> Result<(), PerturbError> {
    match train.iter().find(|&&g| g >= data.groups.len()) {
        _ if train.is_empty() => Err(PerturbError::Invalid("no training perturbations".into())),
        Some(g) => Err(PerturbError::Invalid(format!(
            "training group {g} of a screen with {}",
            data.groups.len()
        ))),
        None => Ok(()),
    }
}

/// Predicts the mean delta of the training perturbations, whatever is perturbed.
#[derive(Debug, Clone)]
pub struct TrainMean {
    mean: Vec<f64>,
}

impl TrainMean {
    pub fn fit(data: &ScreenData, train: &[usize]) -> Result<Self, PerturbError> {
        training_groups(data, train)?;
        let mut mean = vec![0.0; data.genes.len()];
        for &g in train {
            for (m, d) in mean.iter_mut().zip(data.delta(g)) {
                *m += d / train.len() as f64;
            }
        }
        Ok(Self { mean })
    }
}

impl Predictor for TrainMean {
    fn name(&self) -> &str {
        "train_mean"
    }

    fn predict(&self, _: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        Ok(self.mean.clone())
    }
}

/// Predicts the sum of the deltas of the items seen alone in training; an item never seen
/// alone adds nothing.
#[derive(Debug, Clone)]
pub struct Additive {
    genes: usize,
    singles: HashMap<Item, Vec<f64>>,
}

impl Additive {
    pub fn fit(data: &ScreenData, train: &[usize]) -> Result<Self, PerturbError> {
        training_groups(data, train)?;
        let singles = data.singles(train).into_iter().collect();
        Ok(Self {
            genes: data.genes.len(),
            singles,
        })
    }
}

impl Predictor for Additive {
    fn name(&self) -> &str {
        "additive"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let mut out = vec![0.0; self.genes];
        for item in items(p) {
            if let Some(delta) = self.singles.get(&item) {
                out.iter_mut().zip(delta).for_each(|(o, d)| *o += d);
            }
        }
        Ok(out)
    }
}

/// Predicts each item from its opposite measured alone in training (a knockout's opposite is
/// its gene overexpressed, and the other way round), read as a mixture: if a fraction `f` of
/// the control cells has the gene on, overexpression turns the other `1 − f` on and a
/// knockout turns the `f` off, so the knockout's delta is the overexpression's times
/// `−f / (1 − f)`, with `f` from the gene's own levels: its control mean against its lowest
/// and highest level in the training cells (`(control − low) / (high − control)`), and its own
/// change under the opposite perturbation. Items whose opposite was never seen alone add
/// nothing. Not a published baseline: the ensemble's member for genes measured only the other
/// way.
#[derive(Debug, Clone)]
pub struct Opposite {
    genes: Vec<String>,
    singles: HashMap<Item, Vec<f64>>,
    control: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl Opposite {
    /// The largest factor an opposite is scaled by, either way.
    const MAX_SCALE: f64 = 4.0;

    pub fn fit(data: &ScreenData, train: &[usize]) -> Result<Self, PerturbError> {
        training_groups(data, train)?;
        let (low, high) = data.range(train)?;
        Ok(Self {
            genes: data.genes.clone(),
            singles: data.singles(train).into_iter().collect(),
            control: data.control_mean().to_vec(),
            low,
            high,
        })
    }

    /// How much the gene of `(gene, direction)` changes itself under `direction`, over its own
    /// change under the opposite, `observed`.
    fn scale(&self, g: usize, direction: Direction, observed: f64) -> f64 {
        let wanted = match direction {
            Direction::Knockout => self.low[g] - self.control[g],
            Direction::Overexpression => self.high[g] - self.control[g],
        };
        let floor = 0.05 * (self.high[g] - self.low[g]).max(f64::EPSILON);
        if wanted * observed >= 0.0 || observed.abs() < floor {
            return -1.0;
        }
        (wanted / observed).clamp(-Self::MAX_SCALE, -1.0 / Self::MAX_SCALE)
    }
}

impl Predictor for Opposite {
    fn name(&self) -> &str {
        "opposite"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let mut out = vec![0.0; self.genes.len()];
        for (gene, direction) in items(p) {
            let g = gene_index(&self.genes, &gene)?;
            if let Some(delta) = self.singles.get(&(gene, direction.opposite())) {
                let scale = self.scale(g, direction, delta[g]);
                out.iter_mut().zip(delta).for_each(|(o, d)| *o += scale * d);
            }
        }
        Ok(out)
    }
}

/// Ahlmann-Eltze et al.'s linear model. With `Y` the training deltas (genes × perturbations)
/// and `b` its row means, the gene embedding `G` is the first `K` principal-component scores
/// of the genes (rows of `Y − b`), a perturbation's embedding is the sum of its genes' rows of
/// `G` (knockouts and overexpressions in separate blocks), and
/// `W = (GᵀG + λI)⁻¹ Gᵀ (Y − b) P (PᵀP + λI)⁻¹`; a perturbation `p` is predicted as
/// `G W pᵀ + b`. Genes never perturbed in training still have an embedding, so unseen
/// perturbations get a prediction.
#[derive(Debug, Clone)]
pub struct Linear {
    genes: Vec<String>,
    embedding: Mat<f64>,
    weights: Mat<f64>,
    offset: Vec<f64>,
}

impl Linear {
    pub const RIDGE: f64 = 0.1;
    pub const DIMENSIONS: usize = 10;

    pub fn fit(data: &ScreenData, train: &[usize]) -> Result<Self, PerturbError> {
        training_groups(data, train)?;
        let (n, t) = (data.genes.len(), train.len());
        let offset: Vec<f64> = (0..n)
            .map(|j| train.iter().map(|&g| data.delta(g)[j]).sum::<f64>() / t as f64)
            .collect();
        let centred = Mat::from_fn(n, t, |j, k| data.delta(train[k])[j] - offset[j]);
        let svd = centred
            .thin_svd()
            .map_err(|e| PerturbError::Model(format!("the SVD did not converge: {e:?}")))?;
        let k = Self::DIMENSIONS.min(n).min(t);
        let (u, s) = (svd.U(), svd.S().column_vector());
        let embedding = Mat::from_fn(n, k, |j, c| u[(j, c)] * s[c]);
        let mut this = Self {
            genes: data.genes.clone(),
            embedding,
            weights: Mat::zeros(k, 2 * k),
            offset,
        };
        let mut p = Mat::<f64>::zeros(t, 2 * k);
        for (row, &g) in train.iter().enumerate() {
            let e = this.perturbation_embedding(&data.groups[g].perturbation)?;
            for c in 0..2 * k {
                p[(row, c)] = e[c];
            }
        }
        let g = &this.embedding;
        let ridge = |m: Mat<f64>| {
            let d = m.nrows();
            m + Mat::from_fn(d, d, |a, b| if a == b { Self::RIDGE } else { 0.0 })
        };
        let left = ridge(g.transpose() * g);
        let right = ridge(p.transpose() * &p);
        let middle = g.transpose() * &centred * &p;
        let partial = left.partial_piv_lu().solve(&middle);
        // W = partial · right⁻¹ = (right⁻ᵀ partialᵀ)ᵀ, and `right` is symmetric.
        let weights = right
            .partial_piv_lu()
            .solve(partial.transpose().to_owned())
            .transpose()
            .to_owned();
        this.weights = weights;
        Ok(this)
    }

    /// Gene `j`'s row of the embedding `G` (its principal-component scores over the training
    /// deltas).
    pub fn gene_embedding(&self, j: usize) -> Vec<f64> {
        (0..self.embedding.ncols())
            .map(|c| self.embedding[(j, c)])
            .collect()
    }

    /// Σ of the perturbed genes' embeddings: knockouts in the first block, overexpressions in
    /// the second.
    fn perturbation_embedding(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let k = self.embedding.ncols();
        let mut out = vec![0.0; 2 * k];
        for (gene, direction) in items(p) {
            let j = gene_index(&self.genes, &gene)?;
            let block = match direction {
                Direction::Knockout => 0,
                Direction::Overexpression => k,
            };
            for c in 0..k {
                out[block + c] += self.embedding[(j, c)];
            }
        }
        Ok(out)
    }
}

impl Predictor for Linear {
    fn name(&self) -> &str {
        "linear"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let e = self.perturbation_embedding(p)?;
        let pe = Mat::from_fn(e.len(), 1, |r, _| e[r]);
        let out = &self.embedding * (&self.weights * pe);
        Ok((0..self.genes.len())
            .map(|j| out[(j, 0)] + self.offset[j])
            .collect())
    }
}

/// The four baselines fitted on `train`.
pub fn baselines(
    data: &ScreenData,
    train: &[usize],
) -> Result<Vec<Box<dyn Predictor>>, PerturbError> {
    Ok(vec![
        Box::new(NoChange::fit(data)),
        Box::new(TrainMean::fit(data, train)?),
        Box::new(Additive::fit(data, train)?),
        Box::new(Linear::fit(data, train)?),
    ])
}
