//! Stacking: several models' predictions summed with non-negative weights chosen on
//! out-of-fold predictions of the training perturbations, so a model earns its weight on
//! perturbations it did not see, the way the test ones are unseen.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use cellwright_sim::Perturbation;

use crate::baselines::Predictor;
use crate::data::{Item, PerturbError, ScreenData, items, perturbation};

/// Members' predictions weighted and summed.
#[derive(Debug)]
pub struct Ensemble {
    pub name: String,
    pub members: Vec<Box<dyn Predictor>>,
    pub weights: Vec<f64>,
}

/// How the weights were chosen.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Stacking {
    pub members: Vec<String>,
    pub weights: Vec<f64>,
    /// Held-out perturbations the weights were fitted on.
    pub held_out: usize,
}

/// Fits the members, in the same order, on some training groups.
pub type FitMembers<'a> = dyn Fn(&[usize]) -> Result<Vec<Box<dyn Predictor>>, PerturbError> + 'a;

/// Least squares with non-negative weights, by dropping the most negative weight and solving
/// again (exact for the few members an ensemble has). `rows`: the members' predictions and the
/// observation.
fn non_negative_least_squares(rows: &[(Vec<f64>, f64)], members: usize) -> Vec<f64> {
    let mut active: Vec<usize> = (0..members).collect();
    loop {
        let k = active.len();
        if k == 0 {
            return vec![0.0; members];
        }
        let mut a = faer::Mat::<f64>::zeros(k, k);
        let mut b = faer::Mat::<f64>::zeros(k, 1);
        for (x, y) in rows {
            for (i, &m) in active.iter().enumerate() {
                b[(i, 0)] += x[m] * y;
                for (j, &n) in active.iter().enumerate() {
                    a[(i, j)] += x[m] * x[n];
                }
            }
        }
        for i in 0..k {
            a[(i, i)] += 1e-9 * (1.0 + a[(i, i)]);
        }
        let w = faer::linalg::solvers::Solve::solve(&a.partial_piv_lu(), &b);
        let worst = (0..k).min_by(|&i, &j| w[(i, 0)].total_cmp(&w[(j, 0)]));
        match worst {
            Some(i) if w[(i, 0)].is_nan() || w[(i, 0)] < 0.0 => {
                active.remove(i);
            }
            _ => {
                let mut out = vec![0.0; members];
                for (i, &m) in active.iter().enumerate() {
                    out[m] = w[(i, 0)];
                }
                return out;
            }
        }
    }
}

impl Ensemble {
    /// `members` (fitted on `train`) weighted by stacking over `folds` folds of the training
    /// items: each fold holds out its singles and every combination touching them, `fit`
    /// fits the members again on the rest and they predict what was held out. Genes a
    /// perturbation targets are left out of the fit.
    pub fn stacked(
        name: &str,
        data: &ScreenData,
        train: &[usize],
        members: Vec<Box<dyn Predictor>>,
        (folds, seed): (usize, u64),
        fit: &FitMembers<'_>,
    ) -> Result<(Self, Stacking), PerturbError> {
        let mut singles: Vec<Item> = data.singles(train).into_iter().map(|(i, _)| i).collect();
        singles.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let folds = folds.clamp(2, singles.len().max(2));
        let count = members.len();
        let mut rows: Vec<(Vec<f64>, f64)> = Vec::new();
        let mut held_total = 0;
        for f in 0..folds {
            let out: Vec<&Item> = singles.iter().skip(f).step_by(folds).collect();
            let (held, kept): (Vec<usize>, Vec<usize>) = train.iter().partition(|&&g| {
                items(&data.groups[g].perturbation)
                    .iter()
                    .any(|i| out.contains(&i))
            });
            if held.is_empty() || kept.is_empty() {
                continue;
            }
            let fold_members = fit(&kept)?;
            held_total += held.len();
            for g in held {
                let p = &data.groups[g].perturbation;
                let skip = data.targets(p)?;
                let predictions: Vec<Vec<f64>> = fold_members
                    .iter()
                    .map(|m| m.predict(p))
                    .collect::<Result<_, _>>()?;
                for (j, &y) in data.delta(g).iter().enumerate() {
                    if !skip.contains(&j) {
                        rows.push((predictions.iter().map(|x| x[j]).collect(), y));
                    }
                }
            }
        }
        let weights = if rows.is_empty() {
            vec![1.0 / count as f64; count]
        } else {
            non_negative_least_squares(&rows, count)
        };
        let stacking = Stacking {
            members: members.iter().map(|m| m.name().to_owned()).collect(),
            weights: weights.clone(),
            held_out: held_total,
        };
        Ok((
            Self {
                name: name.to_owned(),
                members,
                weights,
            },
            stacking,
        ))
    }
}

impl Predictor for Ensemble {
    fn name(&self) -> &str {
        &self.name
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let mut out: Vec<f64> = Vec::new();
        for (m, w) in self.members.iter().zip(&self.weights) {
            let d = m.predict(p)?;
            if out.is_empty() {
                out = vec![0.0; d.len()];
            }
            for (o, v) in out.iter_mut().zip(d) {
                *o += w * v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_least_squares_and_never_negative() {
        // y = 2·a exactly; b is anti-correlated noise.
        let rows: Vec<(Vec<f64>, f64)> = (0..10)
            .map(|i| {
                let a = f64::from(i);
                (vec![a, -a + 0.1 * f64::from(i % 3)], 2.0 * a)
            })
            .collect();
        let w = non_negative_least_squares(&rows, 2);
        assert!((w[0] - 2.0).abs() < 1e-6 && w[1] == 0.0, "{w:?}");
    }
}

/// A model anchored to the measured singles: a perturbation's items measured alone in
/// training contribute their observed deltas, and the model adds only what it predicts beyond
/// them, `observed(seen items) + model(p) − Σ model(seen item)`. An unseen single is the
/// model's prediction; a pair of seen singles is the additive baseline plus the model's
/// interaction.
#[derive(Debug)]
pub struct Anchored {
    pub inner: Box<dyn Predictor>,
    singles: std::collections::HashMap<Item, Vec<f64>>,
}

impl Anchored {
    pub fn new(inner: Box<dyn Predictor>, data: &ScreenData, train: &[usize]) -> Self {
        let singles = data.singles(train).into_iter().collect();
        Self { inner, singles }
    }
}

impl Predictor for Anchored {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let mut out = self.inner.predict(p)?;
        let its = items(p);
        if its.len() < 2 {
            return Ok(match its.first().and_then(|i| self.singles.get(i)) {
                Some(observed) => observed.clone(),
                None => out,
            });
        }
        for item in its {
            if let Some(observed) = self.singles.get(&item) {
                let alone = self.inner.predict(&perturbation([&item]))?;
                for ((o, a), m) in out.iter_mut().zip(observed).zip(alone) {
                    *o += a - m;
                }
            }
        }
        Ok(out)
    }
}
