//! A candle network from a perturbation's genes to the expression delta, through gene
//! embeddings a gene has whether or not it was ever perturbed:
//!
//! - **from the network**: the ridge coefficients of every gene regressed on every other over
//!   the training cells (cells where the regressed gene is perturbed left out), read as the
//!   perturbed gene's outgoing edges and scaled by the change the perturbation makes to it
//!   (its knocked-out or overexpressed level minus its control mean): the direct effect on
//!   each target;
//! - **from expression**: the gene's principal-component scores over the training deltas (the
//!   linear model's embedding), knockouts and overexpressions in separate blocks.
//!
//! A combination sums its items' inputs. The network is `x ↦ W x + V tanh(U x + a) + b`:
//! a linear path plus a small hidden layer for what is not additive. Trained full-batch with
//! AdamW on the training groups' deltas (perturbed genes masked), with a seeded fifth held out
//! for early stopping; a seed gives the same model.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use cellwright_core::CancelToken;
use cellwright_sim::Perturbation;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baselines::{Linear, Predictor};
use crate::data::{Direction, PerturbError, Pooled, ScreenData, gene_index, items};

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralOptions {
    pub hidden: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub max_epochs: usize,
    /// Epochs without a better held-out loss before stopping.
    pub patience: usize,
    /// Share of the training groups held out for early stopping.
    pub validation: f64,
    /// Ridge penalty of the gene-on-gene regressions.
    pub ridge: f64,
    pub seed: u64,
}

impl Default for NeuralOptions {
    fn default() -> Self {
        Self {
            hidden: 32,
            learning_rate: 3e-3,
            weight_decay: 1e-2,
            max_epochs: 1500,
            patience: 100,
            validation: 0.2,
            ridge: 1.0,
            seed: 0,
        }
    }
}

/// The fitted network.
#[derive(Debug, Clone)]
pub struct Neural {
    genes: Vec<String>,
    /// `coefficients[target][regulator]`.
    coefficients: Vec<Vec<f64>>,
    linear: Linear,
    control: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    params: Params,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
}

#[derive(Debug, Clone)]
struct Params {
    w: Var,
    u: Var,
    a: Var,
    v: Var,
    b: Var,
}

fn model(err: candle_core::Error) -> PerturbError {
    PerturbError::Model(err.to_string())
}

/// Ridge coefficients of each gene on all others over `cells` (rows), skipping each target's
/// perturbed rows.
fn regressions(
    columns: &[Vec<f32>],
    perturbed: &[Vec<usize>],
    ridge: f64,
) -> Result<Vec<Vec<f64>>, PerturbError> {
    let n = columns.len();
    let cells = perturbed.len();
    let mut out = vec![vec![0.0; n]; n];
    for (t, row) in out.iter_mut().enumerate() {
        let rows: Vec<usize> = (0..cells).filter(|&c| !perturbed[c].contains(&t)).collect();
        if rows.len() < 2 || n < 2 {
            continue;
        }
        let others: Vec<usize> = (0..n).filter(|&j| j != t).collect();
        let mean = |j: usize| {
            rows.iter().map(|&c| f64::from(columns[j][c])).sum::<f64>() / rows.len() as f64
        };
        let means: Vec<f64> = (0..n).map(mean).collect();
        let k = others.len();
        let mut a = faer::Mat::<f64>::zeros(k, k);
        let mut b = faer::Mat::<f64>::zeros(k, 1);
        for &c in &rows {
            let y = f64::from(columns[t][c]) - means[t];
            let x: Vec<f64> = others
                .iter()
                .map(|&j| f64::from(columns[j][c]) - means[j])
                .collect();
            for i in 0..k {
                b[(i, 0)] += x[i] * y;
                for j in 0..k {
                    a[(i, j)] += x[i] * x[j];
                }
            }
        }
        for i in 0..k {
            a[(i, i)] += ridge;
        }
        let w = faer::linalg::solvers::Solve::solve(&a.partial_piv_lu(), &b);
        for (i, &j) in others.iter().enumerate() {
            row[j] = w[(i, 0)];
        }
    }
    Ok(out)
}

impl Neural {
    /// Trains on the training groups `train` of `data`.
    pub fn fit(
        data: &ScreenData,
        train: &[usize],
        options: &NeuralOptions,
        cancel: &CancelToken,
    ) -> Result<Self, PerturbError> {
        let linear = Linear::fit(data, train)?;
        if train.len() < 2 {
            return Err(PerturbError::Invalid(
                "the neural model needs at least 2 training perturbations".into(),
            ));
        }
        let n = data.genes.len();
        let (low, high) = data.range(train)?;
        let Pooled { columns, perturbed } = data.pooled(train)?;
        let coefficients = regressions(&columns, &perturbed, options.ridge)?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let dev = Device::Cpu;
        let inputs = n + 2 * linear.gene_embedding(0).len();
        let uniform = |rng: &mut ChaCha8Rng, rows: usize, cols: usize, fan_in: usize| {
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let values: Vec<f32> = (0..rows * cols)
                .map(|_| ((rng.r#gen::<f64>() * 2.0 - 1.0) * bound) as f32)
                .collect();
            Var::from_vec(values, (rows, cols), &dev)
        };
        let params = Params {
            w: Var::zeros((inputs, n), DType::F32, &dev).map_err(model)?,
            u: uniform(&mut rng, inputs, options.hidden, inputs).map_err(model)?,
            a: Var::zeros((1, options.hidden), DType::F32, &dev).map_err(model)?,
            v: uniform(&mut rng, options.hidden, n, options.hidden).map_err(model)?,
            b: Var::zeros((1, n), DType::F32, &dev).map_err(model)?,
        };
        let mut this = Self {
            genes: data.genes.clone(),
            coefficients,
            linear,
            control: data.control_mean().to_vec(),
            low,
            high,
            params,
            best_epoch: 0,
        };
        let mut order = train.to_vec();
        order.shuffle(&mut rng);
        let held =
            ((order.len() as f64 * options.validation).round() as usize).clamp(1, order.len() - 1);
        let (validation, training) = order.split_at(held);
        let batch = |groups: &[usize]| -> Result<(Tensor, Tensor, Tensor), PerturbError> {
            let mut x = Vec::with_capacity(groups.len() * inputs);
            let mut y = Vec::with_capacity(groups.len() * n);
            let mut mask = Vec::with_capacity(groups.len() * n);
            for &g in groups {
                let p = &data.groups[g].perturbation;
                x.extend(this.input(p)?.into_iter().map(|v| v as f32));
                let skip = data.targets(p)?;
                for (j, &d) in data.delta(g).iter().enumerate() {
                    y.push(d as f32);
                    mask.push(if skip.contains(&j) { 0.0f32 } else { 1.0 });
                }
            }
            let rows = groups.len();
            Ok((
                Tensor::from_vec(x, (rows, inputs), &dev).map_err(model)?,
                Tensor::from_vec(y, (rows, n), &dev).map_err(model)?,
                Tensor::from_vec(mask, (rows, n), &dev).map_err(model)?,
            ))
        };
        let (train_x, train_y, train_mask) = batch(training)?;
        let (val_x, val_y, val_mask) = batch(validation)?;
        let loss =
            |this: &Self, x: &Tensor, y: &Tensor, mask: &Tensor| -> candle_core::Result<Tensor> {
                let error = (this.forward(x)? - y)?.mul(mask)?;
                error.sqr()?.sum_all()? / mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64
            };
        let p = &this.params;
        let mut adam = AdamW::new(
            vec![
                p.w.clone(),
                p.u.clone(),
                p.a.clone(),
                p.v.clone(),
                p.b.clone(),
            ],
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: options.weight_decay,
                ..ParamsAdamW::default()
            },
        )
        .map_err(model)?;
        let snapshot = |p: &Params| -> candle_core::Result<Vec<Tensor>> {
            [&p.w, &p.u, &p.a, &p.v, &p.b]
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect()
        };
        let mut best = (f64::INFINITY, snapshot(&this.params).map_err(model)?);
        for epoch in 1..=options.max_epochs {
            if cancel.is_cancelled() {
                return Err(PerturbError::Cancelled);
            }
            let l = loss(&this, &train_x, &train_y, &train_mask).map_err(model)?;
            adam.backward_step(&l).map_err(model)?;
            let held = f64::from(
                loss(&this, &val_x, &val_y, &val_mask)
                    .and_then(|l| l.to_scalar::<f32>())
                    .map_err(model)?,
            );
            if !held.is_finite() {
                return Err(PerturbError::Model(format!(
                    "training diverged at epoch {epoch}"
                )));
            }
            if held < best.0 {
                best = (held, snapshot(&this.params).map_err(model)?);
                this.best_epoch = epoch;
            } else if epoch - this.best_epoch >= options.patience {
                break;
            }
        }
        let p = &this.params;
        for (var, saved) in [&p.w, &p.u, &p.a, &p.v, &p.b].into_iter().zip(&best.1) {
            var.set(saved).map_err(model)?;
        }
        Ok(this)
    }

    /// The network's input for `p`: per item, the scaled outgoing coefficients and the
    /// direction's block of the expression embedding, summed over items.
    fn input(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let n = self.genes.len();
        let k = self.linear.gene_embedding(0).len();
        let mut x = vec![0.0; n + 2 * k];
        for (gene, direction) in items(p) {
            let g = gene_index(&self.genes, &gene)?;
            let (change, block) = match direction {
                Direction::Knockout => (self.low[g] - self.control[g], n),
                Direction::Overexpression => (self.high[g] - self.control[g], n + k),
            };
            for (t, row) in self.coefficients.iter().enumerate() {
                x[t] += change * row[g];
            }
            for (c, e) in self.linear.gene_embedding(g).into_iter().enumerate() {
                x[block + c] += e;
            }
        }
        Ok(x)
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let p = &self.params;
        let linear = x.matmul(p.w.as_tensor())?;
        let hidden = x
            .matmul(p.u.as_tensor())?
            .broadcast_add(p.a.as_tensor())?
            .tanh()?;
        (linear + hidden.matmul(p.v.as_tensor())?)?.broadcast_add(p.b.as_tensor())
    }
}

impl Predictor for Neural {
    fn name(&self) -> &str {
        "neural"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let x: Vec<f32> = self.input(p)?.into_iter().map(|v| v as f32).collect();
        let x = Tensor::from_vec(x.clone(), (1, x.len()), &Device::Cpu).map_err(model)?;
        let y = self
            .forward(&x)
            .and_then(|y| y.flatten_all()?.to_vec1::<f32>())
            .map_err(model)?;
        Ok(y.into_iter().map(f64::from).collect())
    }
}
