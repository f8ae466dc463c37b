//! Every gene's expression cut once into at most 256 quantile bins, shared by every tree of
//! every target that reads the gene.

/// Genes × cells as bin numbers, each gene with its own cut points.
#[derive(Debug, Clone)]
pub(crate) struct Binned {
    /// Per gene, each cell's bin.
    pub(crate) columns: Vec<Vec<u8>>,
}

impl Binned {
    /// `columns`: per gene, each cell's value (finite). Genes with at most `max_bins` distinct
    /// values get one bin per value; others are cut at `max_bins − 1` quantiles (ties kept in
    /// one bin, so bins may be fewer).
    pub(crate) fn new(columns: &[Vec<f32>], max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(2, 256);
        let columns = columns
            .iter()
            .map(|values| {
                let mut sorted = values.clone();
                sorted.sort_by(f32::total_cmp);
                let mut distinct = sorted.clone();
                distinct.dedup();
                // Cut points: a value goes to the bin of the cut points at or below it.
                let cuts: Vec<f32> = if distinct.len() <= max_bins {
                    distinct[1..].to_vec()
                } else {
                    let n = sorted.len();
                    let mut cuts: Vec<f32> =
                        (1..max_bins).map(|b| sorted[b * n / max_bins]).collect();
                    cuts.dedup();
                    // The smallest value opens bin 0, not a bin of its own.
                    cuts.retain(|&c| c > sorted[0]);
                    cuts
                };
                values
                    .iter()
                    .map(|v| cuts.partition_point(|c| c <= v) as u8)
                    .collect()
            })
            .collect();
        Self { columns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_a_bin_each_and_many_are_cut_at_quantiles() {
        let b = Binned::new(&[vec![0.5, 0.0, 2.0, 0.5], vec![3.0; 4]], 256);
        assert_eq!(b.columns[0], vec![1, 0, 2, 1]);
        assert_eq!(b.columns[1], vec![0; 4]);
        let many: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let b = Binned::new(&[many], 4);
        let counts = (0..4).map(|k| b.columns[0].iter().filter(|&&c| c == k).count());
        assert!(counts.into_iter().all(|c| c == 250));
    }
}
