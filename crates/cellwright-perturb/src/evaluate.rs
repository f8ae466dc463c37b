//! Scores of fitted models on a split's test perturbations, per category, with the
//! Virtual Cell Challenge's metrics (cellwright-eval's `response` module).

use std::collections::BTreeMap;

use cellwright_eval::response::{
    des, differential_genes, mae, pds, pearson_or_zero, pick, scaled, scaled_error, top_changed,
};
use cellwright_sim::Perturbation;
use serde::Serialize;

use crate::baselines::Predictor;
use crate::data::{PerturbError, ScreenData};
use crate::split::{Category, Split};

/// Genes in the "top changed" scores.
pub const TOP: usize = 20;
/// False-discovery rate of the differential-expression calls (DES).
pub const FDR: f64 = 0.05;

/// One method's scores on one test perturbation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub perturbation: String,
    pub category: Category,
    pub method: String,
    /// Pearson of predicted and observed delta over all genes but the perturbed ones.
    pub pearson_delta: f64,
    /// The same over the [`TOP`] genes with the largest observed change.
    pub pearson_delta_top20: f64,
    pub mae: f64,
    pub mae_top20: f64,
    /// `None` when no gene is called differentially expressed.
    pub des: Option<f64>,
    pub pds: f64,
    /// The prediction and the observation on the top genes, for scatter plots.
    pub predicted_top20: Vec<f64>,
    pub observed_top20: Vec<f64>,
}

/// Means of one method's scores over a category's perturbations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub method: String,
    pub category: Category,
    pub perturbations: usize,
    pub pearson_delta: f64,
    pub pearson_delta_top20: f64,
    pub mae: f64,
    pub mae_top20: f64,
    pub des: f64,
    pub pds: f64,
    /// The challenge's overall score against the train-mean baseline: the mean of the scaled
    /// DES, PDS and MAE, each clipped at 0.
    pub vcc_score: f64,
}

/// Another screen of the same design (e.g. the true model simulated with another seed): its
/// observed deltas are the prediction. The ceiling a perfect model could reach.
#[derive(Debug, Clone)]
pub struct Replicate {
    pub data: ScreenData,
}

impl Predictor for Replicate {
    fn name(&self) -> &str {
        "ceiling"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let g = self
            .data
            .find(p)
            .ok_or_else(|| PerturbError::UnknownPerturbation(p.label()))?;
        Ok(self.data.delta(g).to_vec())
    }
}

/// Every method on every test perturbation of `split`.
pub fn score_split(
    data: &ScreenData,
    split: &Split,
    methods: &[&dyn Predictor],
) -> Result<Vec<Scored>, PerturbError> {
    let control = data.cell_rows(None);
    let tests: Vec<(usize, Category)> = split.test.clone();
    let excluded: Vec<Vec<usize>> = tests
        .iter()
        .map(|&(g, _)| data.targets(&data.groups[g].perturbation))
        .collect::<Result<_, _>>()?;
    let observed: Vec<Vec<f64>> = tests.iter().map(|&(g, _)| data.delta(g).to_vec()).collect();
    let de: Vec<Vec<usize>> = tests
        .iter()
        .zip(&excluded)
        .map(|(&(g, _), skip)| differential_genes(&data.cell_rows(Some(g)), &control, FDR, skip))
        .collect();
    let mut out = Vec::new();
    for method in methods {
        let predicted: Vec<Vec<f64>> = tests
            .iter()
            .map(|&(g, _)| method.predict(&data.groups[g].perturbation))
            .collect::<Result<_, _>>()?;
        let discrimination = pds(&predicted, &observed, &excluded);
        for (t, &(g, category)) in tests.iter().enumerate() {
            let keep: Vec<usize> = (0..data.genes.len())
                .filter(|j| !excluded[t].contains(j))
                .collect();
            let top = top_changed(&observed[t], TOP, &excluded[t]);
            let (p, o) = (&predicted[t], &observed[t]);
            out.push(Scored {
                perturbation: data.groups[g].perturbation.label(),
                category,
                method: method.name().to_owned(),
                pearson_delta: pearson_or_zero(&pick(p, &keep), &pick(o, &keep)),
                pearson_delta_top20: pearson_or_zero(&pick(p, &top), &pick(o, &top)),
                mae: mae(&pick(p, &keep), &pick(o, &keep)),
                mae_top20: mae(&pick(p, &top), &pick(o, &top)),
                des: des(p, &de[t], &excluded[t]),
                pds: discrimination[t],
                predicted_top20: pick(p, &top),
                observed_top20: pick(o, &top),
            });
        }
    }
    Ok(out)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Per method and category, the mean scores; the VCC score is against `train_mean` (the name
/// of the train-mean baseline's method) in the same category.
pub fn summarise(scored: &[Scored], train_mean: &str) -> Vec<Summary> {
    let mut groups: BTreeMap<(Category, String), Vec<&Scored>> = BTreeMap::new();
    for s in scored {
        groups
            .entry((s.category, s.method.clone()))
            .or_default()
            .push(s);
    }
    let mut out: Vec<Summary> = groups
        .iter()
        .map(|((category, method), rows)| Summary {
            method: method.clone(),
            category: *category,
            perturbations: rows.len(),
            pearson_delta: mean(rows.iter().map(|s| s.pearson_delta)),
            pearson_delta_top20: mean(rows.iter().map(|s| s.pearson_delta_top20)),
            mae: mean(rows.iter().map(|s| s.mae)),
            mae_top20: mean(rows.iter().map(|s| s.mae_top20)),
            des: mean(rows.iter().filter_map(|s| s.des)),
            pds: mean(rows.iter().map(|s| s.pds)),
            vcc_score: f64::NAN,
        })
        .collect();
    let base: BTreeMap<Category, (f64, f64, f64)> = out
        .iter()
        .filter(|s| s.method == train_mean)
        .map(|s| (s.category, (s.des, s.pds, s.mae)))
        .collect();
    for s in &mut out {
        if let Some(&(d, p, m)) = base.get(&s.category) {
            let parts = [scaled(s.des, d), scaled(s.pds, p), scaled_error(s.mae, m)];
            s.vcc_score = mean(parts.iter().filter(|v| v.is_finite()).map(|v| v.max(0.0)));
        }
    }
    out
}
