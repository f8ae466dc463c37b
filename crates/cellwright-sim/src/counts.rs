//! Technical noise: mRNA levels into UMI counts as a droplet protocol would see them, in
//! Splatter's gamma–Poisson form.
//!
//! For cell `c` and gene `g` with mRNA level `x`:
//!
//! - capture factor `L_c ~ LogNormal(−s²/2, s)`, mean 1 (`library_sdlog` = s): library size
//!   and capture efficiency together;
//! - mean `μ = L_c · umis_at_max · x / x_max`;
//! - count `~ Poisson(λ)`, `λ ~ Gamma(shape 1/φ, scale μφ)`: negative binomial with mean `μ`
//!   and variance `μ + φμ²` (`dispersion` = φ; Poisson when φ = 0);
//! - optional dropout: each count is zeroed with probability
//!   `1 / (1 + exp(−shape (ln μ − midpoint)))`. Off by default: UMI data need none beyond the
//!   sampling itself.
//!
//! The defaults mimic a 10x transcription factor: a fully-on gene averages 3 UMIs, so most
//! cells show 0 to a few counts and the matrix is mostly zeros, as droplet data are.

use cellwright_data::matrix::{CompressedStorage, Values};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};
use serde::{Deserialize, Serialize};

use crate::model::SimError;

/// Random streams of the counts start here, clear of the cells' trajectories.
const COUNT_STREAMS: u64 = 1 << 62;

/// Logistic dropout on log mean expression (Splatter's `dropout.mid`, `dropout.shape`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    pub midpoint: f64,
    /// Negative: low means drop out more.
    pub shape: f64,
}

/// The counting process; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CountNoise {
    /// Mean UMIs of a gene at its maximal mRNA level in a cell of average capture.
    pub umis_at_max: f64,
    /// Log-scale standard deviation of the per-cell capture factor.
    pub library_sdlog: f64,
    /// Negative-binomial dispersion φ: variance `μ + φμ²`.
    pub dispersion: f64,
    pub dropout: Option<Dropout>,
}

impl Default for CountNoise {
    fn default() -> Self {
        Self {
            umis_at_max: 3.0,
            library_sdlog: 0.4,
            dispersion: 0.1,
            dropout: None,
        }
    }
}

impl CountNoise {
    fn check(&self) -> Result<(), SimError> {
        let ok = self.umis_at_max.is_finite()
            && self.umis_at_max > 0.0
            && self.library_sdlog.is_finite()
            && self.library_sdlog >= 0.0
            && self.dispersion.is_finite()
            && self.dispersion >= 0.0
            && self
                .dropout
                .is_none_or(|d| d.midpoint.is_finite() && d.shape.is_finite());
        if ok {
            Ok(())
        } else {
            Err(SimError::Invalid(format!(
                "count noise needs umis_at_max > 0, library_sdlog ≥ 0, dispersion ≥ 0 and finite dropout, got {self:?}"
            )))
        }
    }

    /// Counts (sparse CSR, cells × genes) for the levels `mrna`, and each cell's capture factor.
    /// Cell `c` draws from its own stream of `seed`, so the counts do not depend on threads.
    pub fn sample(
        &self,
        mrna: &Array2<f32>,
        mrna_max: f64,
        seed: u64,
    ) -> Result<(Values, Vec<f64>), SimError> {
        self.check()?;
        let s = self.library_sdlog;
        let capture_dist = LogNormal::new(-s * s / 2.0, s)
            .map_err(|e| SimError::Invalid(format!("library_sdlog: {e}")))?;
        let (cells, genes) = mrna.dim();
        let mut indptr = Vec::with_capacity(cells + 1);
        indptr.push(0);
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        let mut captures = Vec::with_capacity(cells);
        for (c, row) in mrna.rows().into_iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(COUNT_STREAMS + c as u64);
            let capture = capture_dist.sample(&mut rng);
            captures.push(capture);
            for (g, &x) in row.iter().enumerate() {
                let mu = capture * self.umis_at_max * f64::from(x).max(0.0) / mrna_max;
                let count = self.draw(mu, &mut rng);
                if count > 0.0 {
                    indices.push(g as u32);
                    data.push(count as f32);
                }
            }
            indptr.push(indices.len());
        }
        let counts = Values::sparse(
            CompressedStorage::CSR,
            (cells, genes),
            indptr,
            indices,
            data,
        )
        .map_err(|e| SimError::Invalid(e.to_string()))?;
        Ok((counts, captures))
    }

    /// One count of mean `mu`.
    fn draw(&self, mu: f64, rng: &mut ChaCha8Rng) -> f64 {
        if mu <= 0.0 {
            return 0.0;
        }
        let lambda = if self.dispersion > 0.0 {
            match Gamma::new(1.0 / self.dispersion, mu * self.dispersion) {
                Ok(g) => g.sample(rng),
                Err(_) => mu,
            }
        } else {
            mu
        };
        let count = match Poisson::new(lambda) {
            Ok(p) => p.sample(rng),
            Err(_) => 0.0,
        };
        if let Some(d) = self.dropout {
            let drop = 1.0 / (1.0 + (-d.shape * (mu.ln() - d.midpoint)).exp());
            if rng.gen_bool(drop.clamp(0.0, 1.0)) {
                return 0.0;
            }
        }
        count
    }
}
