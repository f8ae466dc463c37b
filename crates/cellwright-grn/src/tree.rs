//! Regression trees on binned features, grown with per-node histograms, as CART with the
//! squared error: each split maximises the decrease in the sum of squared errors,
//! `S_L²/n_L + S_R²/n_R − S²/n`, and that decrease is credited to the split's feature (its
//! impurity importance).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a tree grows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// `usize::MAX` grows until leaves are pure or too small to split.
    pub(crate) max_depth: usize,
    /// Features tried per split, drawn at random; constant ones (in the node) do not count,
    /// and the search goes on past this many until one valid split is found (as
    /// scikit-learn's splitter does).
    pub(crate) features_per_split: usize,
    pub(crate) min_samples_leaf: usize,
}

const LEAF: u32 = u32::MAX;

/// A node: a split on `feature` (bin ≤ `threshold` goes left) or, when `feature` is
/// [`LEAF`], a leaf predicting `value`.
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    threshold: u8,
    left: u32,
    right: u32,
    value: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for sample `s` of `features`.
    pub(crate) fn predict(&self, features: &[&[u8]], s: usize) -> f64 {
        let mut i = 0;
        loop {
            let node = &self.nodes[i];
            if node.feature == LEAF {
                return node.value;
            }
            i = if features[node.feature as usize][s] <= node.threshold {
                node.left
            } else {
                node.right
            } as usize;
        }
    }

    /// The value of leaf node `id`.
    pub(crate) fn value(&self, id: u32) -> f64 {
        self.nodes[id as usize].value
    }

    #[cfg(test)]
    fn splits(&self) -> bool {
        self.nodes.len() > 1
    }
}

/// Per bin of one feature in one node: the sum of the targets and the count, side by side
/// so that one vector addition of `[y, 1]` updates both.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(16))]
struct Bin {
    sum: f64,
    count: f64,
}

/// Nodes with fewer samples than this sort each feature's (bin, y) pairs instead of filling
/// and scanning a histogram.
const SMALL: usize = 32;

/// Reusable buffers for growing trees on one set of features.
#[derive(Debug)]
pub(crate) struct Grower<'a> {
    features: &'a [&'a [u8]],
    /// Per feature, its highest bin + 1.
    bins: Vec<usize>,
    /// One histogram of 256 bins per feature drawn for the node.
    hist: Vec<[Bin; 256]>,
    /// Per drawn feature: the lowest and highest bin seen in the node.
    range: Vec<(u8, u8)>,
    pairs: Vec<(u8, f64)>,
    order: Vec<u32>,
    pending: Vec<(usize, usize, usize, usize)>,
    right: Vec<u32>,
    /// `1 / k` for every sample count `k`, so that split gains multiply instead of dividing.
    inverse: Vec<f64>,
    /// After [`Grower::grow`]: each leaf's node and its range of the reordered samples.
    pub(crate) leaves: Vec<(u32, u32, u32)>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    threshold: u8,
    gain: f64,
    left: Bin,
    right: Bin,
}

impl<'a> Grower<'a> {
    pub(crate) fn new(features: &'a [&'a [u8]]) -> Self {
        Self {
            features,
            bins: features
                .iter()
                .map(|c| c.iter().copied().max().map_or(1, |m| usize::from(m) + 1))
                .collect(),
            hist: Vec::new(),
            range: Vec::new(),
            pairs: Vec::new(),
            order: (0..features.len() as u32).collect(),
            pending: Vec::new(),
            right: Vec::new(),
            inverse: vec![0.0],
            leaves: Vec::new(),
        }
    }

    /// Grows a tree fitting `y` on `samples` (indices into `y` and the features, best in
    /// ascending order; repeats count as weights), reordering `samples` so that each leaf's
    /// samples are contiguous ([`Grower::leaves`]); adds each split's gain to `importance`.
    pub(crate) fn grow(
        &mut self,
        y: &[f64],
        samples: &mut [u32],
        params: &Params,
        rng: &mut ChaCha8Rng,
        importance: &mut [f64],
    ) -> Tree {
        let mut tree = Tree::default();
        self.leaves.clear();
        while self.inverse.len() <= samples.len() {
            self.inverse.push(1.0 / self.inverse.len() as f64);
        }
        let root: f64 = samples.iter().map(|&s| y[s as usize]).sum();
        tree.nodes.push(leaf(root / samples.len().max(1) as f64));
        // (node, first sample, end, depth)
        self.pending.push((0, 0, samples.len(), 0));
        while let Some((id, start, end, depth)) = self.pending.pop() {
            let node = &mut samples[start..end];
            let split = if depth >= params.max_depth || node.len() < 2 * params.min_samples_leaf {
                None
            } else {
                self.best_split(y, node, params, rng)
            };
            let Some(split) = split else {
                self.leaves.push((id as u32, start as u32, end as u32));
                continue;
            };
            importance[split.feature] += split.gain;
            // A stable partition keeps each child's samples ascending, so later passes read
            // the targets and features in memory order.
            let column = self.features[split.feature];
            self.right.clear();
            let mut left = 0;
            for i in 0..node.len() {
                let s = node[i];
                if column[s as usize] <= split.threshold {
                    node[left] = s;
                    left += 1;
                } else {
                    self.right.push(s);
                }
            }
            node[left..].copy_from_slice(&self.right);
            let (l, r) = (tree.nodes.len(), tree.nodes.len() + 1);
            tree.nodes.push(leaf(split.left.sum / split.left.count));
            tree.nodes.push(leaf(split.right.sum / split.right.count));
            tree.nodes[id] = Node {
                feature: split.feature as u32,
                threshold: split.threshold,
                left: l as u32,
                right: r as u32,
                value: tree.nodes[id].value,
            };
            self.pending.push((r, start + left, end, depth + 1));
            self.pending.push((l, start, start + left, depth + 1));
        }
        tree
    }

    /// Histograms of the `drawn` features over `node` in one pass (or, for small nodes, by
    /// sorting), in `hist[j]` with each feature's bin range in `range[j]`. Returns
    /// whether the targets differ within the node.
    fn histograms(&mut self, drawn: &[usize], y: &[f64], node: &[u32]) -> bool {
        let k = drawn.len();
        if self.hist.len() < k {
            self.hist.resize(k, [Bin::default(); 256]);
        }
        self.range.clear();
        self.range.resize(k, (u8::MAX, 0));
        if node.len() < SMALL {
            let first = y[node[0] as usize];
            let mut varies = false;
            for (j, &f) in drawn.iter().enumerate() {
                let column = self.features[f];
                self.pairs.clear();
                self.pairs
                    .extend(node.iter().map(|&s| (column[s as usize], y[s as usize])));
                self.pairs.sort_unstable_by_key(|p| p.0);
                let hist = &mut self.hist[j];
                for &(b, v) in &self.pairs {
                    let bin = &mut hist[usize::from(b)];
                    bin.sum += v;
                    bin.count += 1.0;
                    varies |= v != first;
                }
                let (lo, hi) = (self.pairs[0].0, self.pairs[self.pairs.len() - 1].0);
                self.range[j] = (lo, hi);
            }
            return varies;
        }
        let mut varies = false;
        // Passes over the node's samples fill up to four drawn features' histograms each: the
        // target is read once per sample, and the features' additions do not wait on each
        // other.
        for (c, chunk) in drawn.chunks(4).enumerate() {
            let hist = &mut self.hist[c * 4..];
            let column = |j: usize| self.features[chunk[j.min(chunk.len() - 1)]];
            varies |= match chunk.len() {
                1 => accumulate([column(0)], hist, y, node),
                2 => accumulate([column(0), column(1)], hist, y, node),
                3 => accumulate([column(0), column(1), column(2)], hist, y, node),
                _ => accumulate([column(0), column(1), column(2), column(3)], hist, y, node),
            };
        }
        for (j, &f) in drawn.iter().enumerate() {
            let hist = &self.hist[j][..self.bins[f]];
            let lo = hist.iter().position(|b| b.count > 0.0).unwrap_or(0);
            let hi = hist.iter().rposition(|b| b.count > 0.0).unwrap_or(0);
            self.range[j] = (lo as u8, hi as u8);
        }
        varies
    }

    /// The best split of `node` over randomly drawn features, or `None` when the targets are
    /// equal or no drawn feature separates the samples.
    fn best_split(
        &mut self,
        y: &[f64],
        node: &[u32],
        params: &Params,
        rng: &mut ChaCha8Rng,
    ) -> Option<Split> {
        let n = node.len() as f64;
        let min_leaf = params.min_samples_leaf as f64;
        let features = self.order.len();
        let mut best: Option<Split> = None;
        let (mut drawn, mut tried) = (0, 0);
        let mut parent = None;
        // Draw `features_per_split` features, and more, one at a time, while none of those
        // drawn separates the samples.
        while drawn < features && (tried < params.features_per_split || best.is_none()) {
            let want = (params.features_per_split - tried.min(params.features_per_split)).max(1);
            let batch: Vec<usize> = (drawn..(drawn + want).min(features))
                .map(|k| {
                    // A partial Fisher–Yates shuffle draws the features without replacement.
                    let pick = rng.gen_range(k..features);
                    self.order.swap(k, pick);
                    self.order[k] as usize
                })
                .collect();
            drawn += batch.len();
            if !self.histograms(&batch, y, node) {
                self.clear(batch.len());
                return None;
            }
            for (j, &f) in batch.iter().enumerate() {
                let (lo, hi) = self.range[j];
                let hist = &self.hist[j];
                let (total, parent) = *parent.get_or_insert_with(|| {
                    let total: f64 = hist[usize::from(lo)..=usize::from(hi)]
                        .iter()
                        .map(|b| b.sum)
                        .sum();
                    (total, total * total / n)
                });
                if lo == hi {
                    continue;
                }
                tried += 1;
                let mut left = Bin::default();
                for (b, bin) in hist
                    .iter()
                    .enumerate()
                    .take(usize::from(hi))
                    .skip(usize::from(lo))
                {
                    if bin.count == 0.0 {
                        continue;
                    }
                    left.sum += bin.sum;
                    left.count += bin.count;
                    let right = Bin {
                        sum: total - left.sum,
                        count: n - left.count,
                    };
                    if left.count < min_leaf || right.count < min_leaf {
                        continue;
                    }
                    let gain = left.sum * left.sum * self.inverse[left.count as usize]
                        + right.sum * right.sum * self.inverse[right.count as usize]
                        - parent;
                    if best.as_ref().is_none_or(|b| gain > b.gain) {
                        best = Some(Split {
                            feature: f,
                            threshold: b as u8,
                            gain,
                            left,
                            right,
                        });
                    }
                }
            }
            self.clear(batch.len());
        }
        best.filter(|s| s.gain > 0.0)
    }

    /// Empties the first `k` histograms' used ranges.
    fn clear(&mut self, k: usize) {
        for j in 0..k {
            let (lo, hi) = self.range[j];
            if lo <= hi {
                self.hist[j][usize::from(lo)..=usize::from(hi)].fill(Bin::default());
            }
        }
    }
}

/// Adds every sample of `node` to the histograms of `K` features (`hist[j]`);
/// whether the targets differ.
#[inline(always)]
fn accumulate<const K: usize>(
    columns: [&[u8]; K],
    hist: &mut [[Bin; 256]],
    y: &[f64],
    node: &[u32],
) -> bool {
    let hists: [&mut [Bin; 256]; K] = {
        let mut rest = &mut hist[..K];
        std::array::from_fn(|_| {
            let (h, r) = std::mem::take(&mut rest)
                .split_first_mut()
                .expect("K histograms");
            rest = r;
            h
        })
    };
    let first = y[node[0] as usize];
    let mut varies = false;
    for &s in node {
        let v = y[s as usize];
        varies |= v != first;
        for j in 0..K {
            let bin = &mut hists[j][usize::from(columns[j][s as usize])];
            bin.sum += v;
            bin.count += 1.0;
        }
    }
    varies
}

fn leaf(value: f64) -> Node {
    Node {
        feature: LEAF,
        threshold: 0,
        left: 0,
        right: 0,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn all_features(n: usize) -> Params {
        Params {
            max_depth: usize::MAX,
            features_per_split: n,
            min_samples_leaf: 1,
        }
    }

    #[test]
    fn a_step_function_is_split_where_it_steps_on_the_feature_that_carries_it() {
        // y steps up where feature 1 passes bin 2; feature 0 is noise.
        let f0: Vec<u8> = vec![3, 1, 4, 1, 5, 0, 2, 6];
        let f1: Vec<u8> = vec![0, 1, 2, 3, 4, 5, 6, 7];
        let y: Vec<f64> = f1.iter().map(|&b| if b <= 2 { 1.0 } else { 5.0 }).collect();
        let features: Vec<&[u8]> = vec![&f0, &f1];
        let mut grower = Grower::new(&features);
        let mut samples: Vec<u32> = (0..8).collect();
        let mut importance = vec![0.0; 2];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tree = grower.grow(
            &y,
            &mut samples,
            &all_features(2),
            &mut rng,
            &mut importance,
        );
        // One split (then both leaves are pure): the root, on feature 1 at bin 2.
        assert_eq!(tree.nodes.len(), 3);
        assert_eq!((tree.nodes[0].feature, tree.nodes[0].threshold), (1, 2));
        // Its gain is the whole sum of squares around the mean: 3·(1−3.5)² + 5·(5−3.5)².
        let mean = (3.0 * 1.0 + 5.0 * 5.0) / 8.0;
        let sse: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
        assert!(
            (importance[1] - sse).abs() < 1e-9,
            "{importance:?} vs {sse}"
        );
        assert_eq!(importance[0], 0.0);
        for (s, &want) in y.iter().enumerate() {
            assert_eq!(tree.predict(&features, s), want);
        }
    }

    #[test]
    fn gains_add_up_to_the_explained_sum_of_squares() {
        // A fully grown tree on distinct bins fits every sample: the gains sum to the total
        // sum of squares around the mean.
        let f0: Vec<u8> = (0..40).map(|i| (i * 7 % 40) as u8).collect();
        let f1: Vec<u8> = (0..40).map(|i| (i * 3 % 40) as u8).collect();
        let y: Vec<f64> = (0..40).map(|i| ((i * 13) % 17) as f64).collect();
        let features: Vec<&[u8]> = vec![&f0, &f1];
        let mut samples: Vec<u32> = (0..40).collect();
        let mut importance = vec![0.0; 2];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let params = Params {
            features_per_split: 1,
            ..all_features(2)
        };
        let tree =
            Grower::new(&features).grow(&y, &mut samples, &params, &mut rng, &mut importance);
        let mean = y.iter().sum::<f64>() / 40.0;
        let sse: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
        let gained: f64 = importance.iter().sum();
        assert!((gained - sse).abs() < 1e-6 * sse, "{gained} vs {sse}");
        assert!((0..40).all(|s| tree.predict(&features, s) == y[s]));
        // Depth 1 keeps one split.
        let stump = Params {
            max_depth: 1,
            ..all_features(2)
        };
        let tree = Grower::new(&features).grow(&y, &mut samples, &stump, &mut rng, &mut importance);
        assert_eq!(tree.nodes.len(), 3);
    }

    #[test]
    fn constant_targets_and_constant_features_do_not_split() {
        let f0: Vec<u8> = vec![0; 6];
        let f1: Vec<u8> = vec![0, 1, 0, 1, 0, 1];
        let features: Vec<&[u8]> = vec![&f0, &f1];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut importance = vec![0.0; 2];
        let mut samples: Vec<u32> = (0..6).collect();
        let flat = [2.0; 6];
        let tree = Grower::new(&features).grow(
            &flat,
            &mut samples,
            &all_features(2),
            &mut rng,
            &mut importance,
        );
        assert!(!tree.splits());
        // Only feature 1 can split; with one feature tried per split, the search goes on past
        // the constant one.
        let y = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let params = Params {
            features_per_split: 1,
            ..all_features(2)
        };
        let tree =
            Grower::new(&features).grow(&y, &mut samples, &params, &mut rng, &mut importance);
        assert!(tree.splits());
        assert_eq!(importance[0], 0.0);
        assert!(importance[1] > 0.0);
    }
}
