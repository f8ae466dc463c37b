//! A ranking of candidates (e.g. every possible regulator → target edge, scored by an
//! inference method) against the set of true ones.
//!
//! Candidates with equal scores form one group: no order among them is assumed, so a method
//! gains nothing from breaking ties in its favour.
//!
//! - **AUPRC**: average precision, `Σ (R_t − R_{t−1}) P_t` over the distinct scores `t` from the
//!   highest down (scikit-learn's `average_precision_score`). BEELINE integrates the PR curve
//!   with trapezoids, which rewards a method for the line it draws between two points; average
//!   precision does not.
//! - **AUPRC ratio**: AUPRC over the density of true candidates (the AUPRC of a random ranking).
//! - **AUROC**: the area under the ROC curve, ties counted half (Mann–Whitney).
//! - **Early precision** (BEELINE): the precision among the top `k` candidates, `k` the number of
//!   true ones, where candidates tied with the `k`-th are all included; **EPR** is that over the
//!   density.

use serde::Serialize;

/// One candidate: its score (higher ranks first) and whether it is true.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub truth: bool,
}

/// Why a ranking cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    #[error("nothing to score: the ranking is empty")]
    Empty,
    #[error("candidate {index} has a score that is not a number")]
    NotANumber { index: usize },
    #[error("none of the {candidates} candidates is true, so precision and recall are undefined")]
    NoPositives { candidates: usize },
    #[error("all {candidates} candidates are true, so the ranking cannot be wrong")]
    NoNegatives { candidates: usize },
}

/// The summary of one ranking; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Metrics {
    pub candidates: usize,
    pub positives: usize,
    /// `positives / candidates`.
    pub density: f64,
    pub auprc: f64,
    pub auprc_ratio: f64,
    pub auroc: f64,
    pub early_precision: f64,
    pub epr: f64,
}

/// Precision against recall at each distinct score, from the highest down.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Curve {
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
}

/// Per distinct score, highest first: how many true and false candidates have it.
fn groups(scored: &[Scored]) -> Result<(Vec<(usize, usize)>, usize), EvalError> {
    if scored.is_empty() {
        return Err(EvalError::Empty);
    }
    if let Some(index) = scored.iter().position(|s| s.score.is_nan()) {
        return Err(EvalError::NotANumber { index });
    }
    let positives = scored.iter().filter(|s| s.truth).count();
    let candidates = scored.len();
    if positives == 0 {
        return Err(EvalError::NoPositives { candidates });
    }
    if positives == candidates {
        return Err(EvalError::NoNegatives { candidates });
    }
    let mut order: Vec<&Scored> = scored.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut last = None;
    for s in order {
        if last != Some(s.score) {
            out.push((0, 0));
            last = Some(s.score);
        }
        let g = out.last_mut().expect("a group was just pushed");
        if s.truth {
            g.0 += 1;
        } else {
            g.1 += 1;
        }
    }
    Ok((out, positives))
}

/// AUPRC, AUROC and early precision of `scored`.
pub fn metrics(scored: &[Scored]) -> Result<Metrics, EvalError> {
    let (groups, positives) = groups(scored)?;
    let candidates = scored.len();
    let negatives = candidates - positives;
    let (p, n) = (positives as f64, negatives as f64);
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut auprc, mut auroc) = (0.0, 0.0);
    let mut early_precision = None;
    for &(t, f) in &groups {
        let (tpr0, fpr0) = (tp as f64 / p, fp as f64 / n);
        tp += t;
        fp += f;
        let (tpr, fpr) = (tp as f64 / p, fp as f64 / n);
        let precision = tp as f64 / (tp + fp) as f64;
        auprc += (tpr - tpr0) * precision;
        auroc += (fpr - fpr0) * (tpr + tpr0) / 2.0;
        if early_precision.is_none() && tp + fp >= positives {
            early_precision = Some(precision);
        }
    }
    let density = p / candidates as f64;
    let early_precision = early_precision.expect("the groups hold every candidate");
    Ok(Metrics {
        candidates,
        positives,
        density,
        auprc,
        auprc_ratio: auprc / density,
        auroc,
        early_precision,
        epr: early_precision / density,
    })
}

/// The precision–recall curve of `scored`: one point per distinct score.
pub fn pr_curve(scored: &[Scored]) -> Result<Curve, EvalError> {
    let (groups, positives) = groups(scored)?;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve = Curve {
        recall: Vec::with_capacity(groups.len()),
        precision: Vec::with_capacity(groups.len()),
    };
    for (t, f) in groups {
        tp += t;
        fp += f;
        curve.recall.push(tp as f64 / positives as f64);
        curve.precision.push(tp as f64 / (tp + fp) as f64);
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranking(items: &[(f64, bool)]) -> Vec<Scored> {
        items
            .iter()
            .map(|&(score, truth)| Scored { score, truth })
            .collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn distinct_scores_match_the_hand_computed_values() {
        let m = metrics(&ranking(&[
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.6, false),
        ]))
        .unwrap();
        // AP = ½·1 + ½·⅔; AUROC: 3 of 4 (true, false) pairs in order; top 2 hold 1 true.
        close(m.auprc, 0.5 + 0.5 * 2.0 / 3.0);
        close(m.auroc, 0.75);
        close(m.density, 0.5);
        close(m.auprc_ratio, (0.5 + 1.0 / 3.0) / 0.5);
        close(m.early_precision, 0.5);
        close(m.epr, 1.0);
        // Order of the input does not matter.
        let m2 = metrics(&ranking(&[
            (0.6, false),
            (0.7, true),
            (0.9, true),
            (0.8, false),
        ]))
        .unwrap();
        assert_eq!(m, m2);
    }

    #[test]
    fn tied_scores_are_one_group() {
        // {0.9: one true, one false}, {0.5: true}, {0.1: false}.
        let r = ranking(&[(0.9, true), (0.9, false), (0.5, true), (0.1, false)]);
        let m = metrics(&r).unwrap();
        close(m.auprc, 0.5 * 0.5 + 0.5 * 2.0 / 3.0);
        // Pairs: tie ½, 1, 0, 1.
        close(m.auroc, 2.5 / 4.0);
        close(m.early_precision, 0.5);
        // Swapping the tied pair changes nothing.
        let swapped = ranking(&[(0.9, false), (0.9, true), (0.5, true), (0.1, false)]);
        assert_eq!(metrics(&swapped).unwrap(), m);
        let c = pr_curve(&r).unwrap();
        assert_eq!(c.recall, vec![0.5, 1.0, 1.0]);
        assert_eq!(c.precision, vec![0.5, 2.0 / 3.0, 0.5]);
    }

    #[test]
    fn early_precision_takes_every_candidate_tied_with_the_kth() {
        // k = 3 true; the 3rd candidate is tied with two more: the top set has 4, 2 true.
        let r = ranking(&[
            (0.9, true),
            (0.5, false),
            (0.5, true),
            (0.5, false),
            (0.1, true),
        ]);
        let m = metrics(&r).unwrap();
        close(m.early_precision, 0.5);
        close(m.epr, 0.5 / 0.6);
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let perfect = metrics(&ranking(&[(3.0, true), (2.0, false), (1.0, false)])).unwrap();
        close(perfect.auprc, 1.0);
        close(perfect.auroc, 1.0);
        close(perfect.epr, 3.0);
        let reversed = metrics(&ranking(&[(1.0, true), (2.0, false), (3.0, false)])).unwrap();
        close(reversed.auroc, 0.0);
        close(reversed.auprc, 1.0 / 3.0);
        close(reversed.early_precision, 0.0);
    }

    #[test]
    fn bad_rankings_are_clear_errors() {
        assert_eq!(metrics(&[]), Err(EvalError::Empty));
        assert_eq!(
            metrics(&ranking(&[(1.0, true), (f64::NAN, false)])),
            Err(EvalError::NotANumber { index: 1 })
        );
        let none = metrics(&ranking(&[(1.0, false), (2.0, false)])).unwrap_err();
        assert_eq!(none, EvalError::NoPositives { candidates: 2 });
        assert!(
            none.to_string()
                .contains("none of the 2 candidates is true")
        );
        assert_eq!(
            pr_curve(&ranking(&[(1.0, true)])),
            Err(EvalError::NoNegatives { candidates: 1 })
        );
    }
}
