//! Signed scoring, for methods that say whether a regulator raises or lowers its target
//! (BEELINE scores activating and inhibitory edges apart).
//!
//! For each sign, the candidates are ranked as [`ranking`](crate::ranking) does, except that a
//! candidate the method gave the other sign (or none) is placed below every other, in one
//! tied group: the method did not predict an edge of this sign there. A candidate is true for
//! a sign when it is a true edge of that sign; a true edge whose sign depends on other inputs
//! (dual) is true for both. The **sign accuracy** is the share of the true edges of one sign
//! whose predicted sign is that sign.

use serde::Serialize;

use crate::ranking::{EvalError, Metrics, Scored, metrics};

/// Activation.
pub const UP: i8 = 1;
/// Inhibition.
pub const DOWN: i8 = -1;

/// One candidate: its score, the sign the method gave it (`UP`, `DOWN` or 0 for none), and
/// its true sign: `None` if it is not a true edge, `Some(0)` for a dual edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedScored {
    pub score: f64,
    pub predicted: i8,
    pub truth: Option<i8>,
}

/// Signed metrics; a sign with no true edge among the candidates has none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SignedMetrics {
    pub activation: Option<Metrics>,
    pub inhibition: Option<Metrics>,
    /// Among true edges that are activating or inhibitory, the share given that sign.
    pub sign_accuracy: Option<f64>,
}

/// The ranking of `scored` for edges of `sign`.
fn for_sign(scored: &[SignedScored], sign: i8) -> Vec<Scored> {
    scored
        .iter()
        .map(|s| Scored {
            score: if s.predicted == sign {
                s.score
            } else {
                f64::NEG_INFINITY
            },
            truth: matches!(s.truth, Some(t) if t == sign || t == 0),
        })
        .collect()
}

/// Metrics of `scored` for activating and for inhibitory edges, and the sign accuracy.
pub fn signed_metrics(scored: &[SignedScored]) -> Result<SignedMetrics, EvalError> {
    let one = |sign| match metrics(&for_sign(scored, sign)) {
        Ok(m) => Ok(Some(m)),
        Err(EvalError::NoPositives { .. } | EvalError::NoNegatives { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    let signed: Vec<&SignedScored> = scored
        .iter()
        .filter(|s| matches!(s.truth, Some(UP | DOWN)))
        .collect();
    let right = signed
        .iter()
        .filter(|s| Some(s.predicted) == s.truth)
        .count();
    Ok(SignedMetrics {
        activation: one(UP)?,
        inhibition: one(DOWN)?,
        sign_accuracy: (!signed.is_empty()).then(|| right as f64 / signed.len() as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f64, predicted: i8, truth: Option<i8>) -> SignedScored {
        SignedScored {
            score,
            predicted,
            truth,
        }
    }

    #[test]
    fn each_sign_is_ranked_with_the_other_sign_last() {
        let r = [
            s(0.9, UP, Some(UP)),
            s(0.8, DOWN, Some(UP)), // right edge, wrong sign
            s(0.7, DOWN, Some(DOWN)),
            s(0.6, UP, None),
            s(0.5, UP, Some(0)), // dual: true for both signs
        ];
        let m = signed_metrics(&r).unwrap();
        // Activation: 0.9 (T), 0.6 (F), 0.5 (T), then {0.8 T, 0.7 F} tied at the bottom.
        // Positives 3 of 5. AP = ⅓·1 + ⅓·⅔ + ⅓·(3/5).
        let a = m.activation.unwrap();
        assert!((a.auprc - (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0).abs() < 1e-12);
        assert_eq!(a.positives, 3);
        // Inhibition: 0.8 (F), 0.7 (T), then {0.9 F, 0.6 F, 0.5 T} tied.
        // Positives 2 of 5. AP = ½·½ + ½·(2/5).
        let i = m.inhibition.unwrap();
        assert!((i.auprc - (0.25 + 0.5 * 2.0 / 5.0)).abs() < 1e-12);
        // Signed true edges: 0.9 right, 0.8 wrong, 0.7 right.
        assert!((m.sign_accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_sign_without_true_edges_has_no_metrics() {
        let m = signed_metrics(&[s(0.9, UP, Some(UP)), s(0.1, DOWN, None)]).unwrap();
        assert!(m.activation.is_some() && m.inhibition.is_none());
        assert_eq!(m.sign_accuracy, Some(1.0));
        assert_eq!(
            signed_metrics(&[s(f64::NAN, UP, None), s(1.0, UP, Some(UP))]),
            Err(EvalError::NotANumber { index: 0 })
        );
        assert_eq!(signed_metrics(&[]), Err(EvalError::Empty));
    }
}
