//! The neural family: one small network per target, all trained together with candle, and
//! edges scored by how strongly each target's prediction moves with each regulator.
//!
//! Target `t` is predicted from the standardised regulators `x` (its own value masked out) by
//! a one-hidden-layer network, `ŷ_t = w2_t · tanh(W1_t x + b1_t) + b2_t`: the component-wise
//! MLP of neural Granger causality (Tank et al., 2021), here without time. All targets' first
//! layers form one `regulators × (targets · hidden)` matrix, so a batch of cells is one matrix
//! product. The loss is the mean squared error of the standardised targets plus a group lasso
//! on each (regulator, target) block of `W1`, which pushes regulators a target does not need
//! towards zero. Training is Adam on mini-batches and stops when the loss on held-out cells
//! has not improved for `patience` epochs, keeping the best weights.
//!
//! The score of regulator → target is the mean over all cells of `|∂ŷ_t / ∂x_r|`, the
//! gradient attribution, which, unlike the weights alone, sees saturated hidden units.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use cellwright_core::{CancelToken, Progress};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::infer::GrnError;

/// Settings of the neural model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Neural {
    /// Hidden units per target.
    pub hidden: usize,
    /// Strength of the group lasso on each regulator's weights into a target.
    pub group_lasso: f64,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Cells per gradient step.
    pub batch: usize,
    /// Most passes over the training cells.
    pub max_epochs: usize,
    /// Epochs without a better held-out loss before training stops.
    pub patience: usize,
    /// Share of the cells held out to decide when to stop.
    pub validation: f64,
}

impl Default for Neural {
    fn default() -> Self {
        Self {
            hidden: 8,
            group_lasso: 0.3,
            learning_rate: 0.01,
            batch: 128,
            max_epochs: 200,
            patience: 10,
            validation: 0.1,
        }
    }
}

impl Neural {
    /// Settings out of their ranges, named.
    pub(crate) fn problems(&self) -> [(bool, &'static str); 6] {
        [
            (self.hidden == 0, "neural.hidden must be at least 1"),
            (
                !(self.group_lasso >= 0.0 && self.group_lasso.is_finite()),
                "neural.group_lasso must be a number ≥ 0",
            ),
            (
                !(self.learning_rate > 0.0 && self.learning_rate.is_finite()),
                "neural.learning_rate must be a number > 0",
            ),
            (self.batch == 0, "neural.batch must be at least 1"),
            (self.max_epochs == 0, "neural.max_epochs must be at least 1"),
            (
                !(self.validation > 0.0 && self.validation < 1.0),
                "neural.validation must be in (0, 1)",
            ),
        ]
    }
}

impl From<candle_core::Error> for GrnError {
    fn from(e: candle_core::Error) -> Self {
        GrnError::Neural(e.to_string())
    }
}

/// Column `g` of `columns` standardised to mean 0 and variance 1 (all zeros if constant).
fn standard(values: &[f32]) -> Vec<f32> {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    values
        .iter()
        .map(|&v| ((f64::from(v) - mean) * scale) as f32)
        .collect()
}

/// `cells × genes` row-major values of the given genes at the given cells.
fn table(columns: &[Vec<f32>], genes: &[usize], cells: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(genes.len() * cells.len());
    for &c in cells {
        out.extend(genes.iter().map(|&g| columns[g][c]));
    }
    out
}

/// The trained weights.
struct Weights {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Weights {
    /// `x` (`cells × regulators`) → the hidden activations (`cells × targets·hidden`) and the
    /// predictions (`cells × targets`).
    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        targets: usize,
    ) -> candle_core::Result<[Tensor; 2]> {
        let hidden = x
            .matmul(&(self.w1.as_tensor() * mask)?)?
            .broadcast_add(self.b1.as_tensor())?
            .tanh()?;
        let cells = x.dim(0)?;
        let y = hidden
            .reshape((cells, targets, ()))?
            .broadcast_mul(self.w2.as_tensor())?
            .sum(D::Minus1)?
            .broadcast_add(self.b2.as_tensor())?;
        Ok([hidden, y])
    }

    fn snapshot(&self) -> candle_core::Result<[Tensor; 4]> {
        Ok([
            self.w1.as_tensor().copy()?,
            self.b1.as_tensor().copy()?,
            self.w2.as_tensor().copy()?,
            self.b2.as_tensor().copy()?,
        ])
    }

    fn restore(&self, best: &[Tensor; 4]) -> candle_core::Result<()> {
        self.w1.set(&best[0])?;
        self.b1.set(&best[1])?;
        self.w2.set(&best[2])?;
        self.b2.set(&best[3])
    }
}

/// Scores of every regulator (by position in `regulators`) for every gene as target:
/// `scores[target][r]`, 0 for a regulator and itself.
pub(crate) fn saliency(
    columns: &[Vec<f32>],
    regulators: &[usize],
    settings: &Neural,
    seed: u64,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Vec<Vec<f64>>, GrnError> {
    let dev = Device::Cpu;
    let (genes, r, h) = (columns.len(), regulators.len(), settings.hidden);
    let cells = columns.first().map_or(0, Vec::len);
    let standardised: Vec<Vec<f32>> = columns.iter().map(|c| standard(c)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX);

    let mut order: Vec<usize> = (0..cells).collect();
    order.shuffle(&mut rng);
    let held_out = ((cells as f64 * settings.validation).round() as usize).clamp(1, cells - 1);
    let (validation, training) = order.split_at(held_out);
    let all_genes: Vec<usize> = (0..genes).collect();
    let tensors = |cells: &[usize]| -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            Tensor::from_vec(
                table(&standardised, regulators, cells),
                (cells.len(), r),
                &dev,
            )?,
            Tensor::from_vec(
                table(&standardised, &all_genes, cells),
                (cells.len(), genes),
                &dev,
            )?,
        ))
    };
    let (x_train, y_train) = tensors(training)?;
    let (x_val, y_val) = tensors(validation)?;

    // A regulator's weights into its own target are held at zero.
    let mask: Vec<f32> = (0..r)
        .flat_map(|i| {
            (0..genes).flat_map(move |t| std::iter::repeat_n(f32::from(regulators[i] != t), h))
        })
        .collect();
    let mask = Tensor::from_vec(mask, (r, genes * h), &dev)?;
    let mut uniform = |n: usize, bound: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((rng.r#gen::<f64>() * 2.0 - 1.0) * bound) as f32)
            .collect()
    };
    let w1 = uniform(r * genes * h, 1.0 / (r as f64).sqrt());
    let b1 = uniform(genes * h, 1.0 / (r as f64).sqrt());
    let w2 = uniform(genes * h, 1.0 / (h as f64).sqrt());
    let weights = Weights {
        w1: Var::from_vec(w1, (r, genes * h), &dev)?,
        b1: Var::from_vec(b1, genes * h, &dev)?,
        w2: Var::from_vec(w2, (genes, h), &dev)?,
        b2: Var::zeros(genes, DType::F32, &dev)?,
    };
    let mut adam = AdamW::new(
        vec![
            weights.w1.clone(),
            weights.b1.clone(),
            weights.w2.clone(),
            weights.b2.clone(),
        ],
        ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let lasso = settings.group_lasso / genes as f64;
    let group_norms = |w1: &Tensor| -> candle_core::Result<Tensor> {
        (w1 * &mask)?
            .reshape((r, genes, h))?
            .sqr()?
            .sum(D::Minus1)?
            .affine(1.0, 1e-8)?
            .sqrt()?
            .sum_all()
    };

    let mut best = (f64::INFINITY, weights.snapshot()?, 0usize);
    let mut batch_order: Vec<u32> = (0..training.len() as u32).collect();
    for epoch in 1..=settings.max_epochs {
        if cancel.is_cancelled() {
            return Err(GrnError::Cancelled);
        }
        batch_order.shuffle(&mut rng);
        for chunk in batch_order.chunks(settings.batch) {
            let index = Tensor::new(chunk, &dev)?;
            let (x, y) = (
                x_train.index_select(&index, 0)?,
                y_train.index_select(&index, 0)?,
            );
            let [_, predicted] = weights.forward(&x, &mask, genes)?;
            let fit = (predicted - y)?.sqr()?.mean_all()?;
            let loss = (fit + (group_norms(weights.w1.as_tensor())? * lasso)?)?;
            adam.backward_step(&loss)?;
        }
        let [_, predicted] = weights.forward(&x_val, &mask, genes)?;
        let held: f64 = (predicted - &y_val)?
            .sqr()?
            .mean_all()?
            .to_scalar::<f32>()?
            .into();
        progress.report(
            epoch as u64,
            Some(settings.max_epochs as u64),
            "training the neural model",
        );
        if !held.is_finite() {
            return Err(GrnError::Neural(format!(
                "the held-out loss became {held} at epoch {epoch}; try a smaller learning rate"
            )));
        }
        if held < best.0 {
            best = (held, weights.snapshot()?, epoch);
        } else if epoch - best.2 >= settings.patience {
            break;
        }
    }
    weights.restore(&best.1)?;

    // Mean |∂ŷ_t/∂x_r| over all cells, a block of cells at a time:
    // ∂ŷ_t/∂x_r = Σ_k w2[t,k] (1 − a[t,k]²) W1[r, t·h + k].
    let w1 = (weights.w1.as_tensor() * &mask)?
        .reshape((r, genes, h))?
        .permute((1, 2, 0))?
        .contiguous()?; // targets × hidden × regulators
    let mut total = Tensor::zeros((genes, r), DType::F32, &dev)?;
    let everyone: Vec<usize> = (0..cells).collect();
    for block in everyone.chunks(256) {
        let x = Tensor::from_vec(
            table(&standardised, regulators, block),
            (block.len(), r),
            &dev,
        )?;
        let [hidden, _] = weights.forward(&x, &mask, genes)?;
        let slope = hidden
            .sqr()?
            .affine(-1.0, 1.0)?
            .reshape((block.len(), genes, h))?
            .broadcast_mul(weights.w2.as_tensor())?
            .transpose(0, 1)?
            .contiguous()?; // targets × cells × hidden
        let gradients = slope.matmul(&w1)?; // targets × cells × regulators
        total = (total + gradients.abs()?.sum(1)?)?;
    }
    let total = (total / cells as f64)?.to_vec2::<f32>()?;
    Ok(total
        .into_iter()
        .map(|row| row.into_iter().map(f64::from).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use cellwright_core::NoProgress;

    use super::*;

    #[test]
    fn an_interaction_is_found_and_a_gene_never_regulates_itself() {
        // d = a AND b (as a product), c unrelated.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut columns = vec![Vec::new(); 4];
        for _ in 0..400 {
            let [a, b, c]: [f32; 3] = std::array::from_fn(|_| rng.r#gen());
            let noise = (rng.r#gen::<f32>() - 0.5) * 0.05;
            for (g, v) in [a, b, c, a * b + noise].into_iter().enumerate() {
                columns[g].push(v);
            }
        }
        let scores = saliency(
            &columns,
            &[0, 1, 2],
            &Neural::default(),
            1,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(scores.len(), 4);
        let d = &scores[3];
        assert!(d[0] > 5.0 * d[2] && d[1] > 5.0 * d[2], "{d:?}");
        for (g, row) in scores.iter().take(3).enumerate() {
            assert_eq!(row[g], 0.0);
        }
    }

    #[test]
    fn cancelling_stops_training() {
        let columns = vec![vec![0.0, 1.0, 2.0], vec![1.0, 0.0, 1.0]];
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = saliency(&columns, &[0], &Neural::default(), 0, &NoProgress, &cancel);
        assert!(matches!(err, Err(GrnError::Cancelled)));
    }
}
