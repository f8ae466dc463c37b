//! Splits by perturbation, GEARS's protocol: some single perturbations are held out whole;
//! a combination is tested by how many of its items were seen alone in training (0, 1 or 2),
//! and never trains when one of its items is held out.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{Item, PerturbError, ScreenData, items};

/// What a test perturbation is, relative to training.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A single perturbation never seen in training.
    UnseenSingle,
    /// A combination none of whose items was seen alone in training.
    PairsSeen0,
    /// A combination with one item seen alone.
    PairsSeen1,
    /// A combination with every item seen alone, itself held out.
    PairsSeen2,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::UnseenSingle,
        Category::PairsSeen0,
        Category::PairsSeen1,
        Category::PairsSeen2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::UnseenSingle => "unseen_single",
            Category::PairsSeen0 => "pairs_seen0",
            Category::PairsSeen1 => "pairs_seen1",
            Category::PairsSeen2 => "pairs_seen2",
        }
    }
}

/// Which groups of a screen train and which test, by index into [`ScreenData::groups`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Split {
    pub seed: u64,
    pub train: Vec<usize>,
    pub test: Vec<(usize, Category)>,
}

/// How much to hold out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SplitOptions {
    /// Share of the single perturbations held out (at least one).
    pub unseen_singles: f64,
    /// Share of the combinations whose items all train that are themselves held out.
    pub seen2_pairs: f64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            unseen_singles: 0.25,
            seen2_pairs: 0.5,
        }
    }
}

impl Split {
    /// GEARS's split of `data` for `seed`.
    pub fn gears(
        data: &ScreenData,
        options: SplitOptions,
        seed: u64,
    ) -> Result<Self, PerturbError> {
        let share = |v: f64| (0.0..1.0).contains(&v);
        if !share(options.unseen_singles) || !share(options.seen2_pairs) {
            return Err(PerturbError::Invalid(format!(
                "held-out shares must be in [0, 1): unseen_singles {}, seen2_pairs {}",
                options.unseen_singles, options.seen2_pairs
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut singles: Vec<usize> = (0..data.groups.len())
            .filter(|&g| items(&data.groups[g].perturbation).len() == 1)
            .collect();
        if singles.len() < 2 {
            return Err(PerturbError::Invalid(format!(
                "{} single perturbations: a split needs at least 2 (one to train, one to test)",
                singles.len()
            )));
        }
        singles.shuffle(&mut rng);
        let held = ((singles.len() as f64 * options.unseen_singles).round() as usize)
            .clamp(1, singles.len() - 1);
        let (test_singles, train_singles) = singles.split_at(held);
        let seen: Vec<Item> = train_singles
            .iter()
            .flat_map(|&g| items(&data.groups[g].perturbation))
            .collect();
        let mut train = train_singles.to_vec();
        let mut test: Vec<(usize, Category)> = test_singles
            .iter()
            .map(|&g| (g, Category::UnseenSingle))
            .collect();
        let mut seen2 = Vec::new();
        for (g, group) in data.groups.iter().enumerate() {
            let its = items(&group.perturbation);
            if its.len() < 2 {
                continue;
            }
            let known = its.iter().filter(|i| seen.contains(i)).count();
            match (known, its.len() - known) {
                (_, 0) => seen2.push(g),
                (0, _) => test.push((g, Category::PairsSeen0)),
                _ => test.push((g, Category::PairsSeen1)),
            }
        }
        seen2.shuffle(&mut rng);
        let held = (seen2.len() as f64 * options.seen2_pairs).round() as usize;
        test.extend(seen2[..held].iter().map(|&g| (g, Category::PairsSeen2)));
        train.extend(&seen2[held..]);
        train.sort_unstable();
        test.sort_unstable();
        Ok(Self { seed, train, test })
    }

    /// The test groups of `category`.
    pub fn tested(&self, category: Category) -> Vec<usize> {
        self.test
            .iter()
            .filter(|(_, c)| *c == category)
            .map(|(g, _)| *g)
            .collect()
    }
}
