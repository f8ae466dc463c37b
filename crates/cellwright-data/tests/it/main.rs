//! cellwright-data's integration tests, one binary: each module checks one part against
//! values read independently of our code (fixtures made by scripts under `tests/data/`).

#![allow(clippy::unwrap_used)]

mod fetch;
mod genedb;
mod genesets;
mod h5ad;
mod matrix;
mod models;
mod pickle;
mod regulons;
mod text;

use std::path::PathBuf;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;

/// The files of a catalogue data set, fetched into the cache on first use.
pub fn dataset(name: &str) -> Vec<PathBuf> {
    catalogue::find(name)
        .unwrap()
        .fetch(&NoProgress, &CancelToken::new())
        .unwrap()
}

/// The expected values in `tests/data/matrix/expected.json` (made by `make_fixture.py` there).
pub fn expected() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../tests/data/matrix/expected.json")).unwrap()
}

/// `a` and `b` agree to `tol`, relative to the larger.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// A file of the repository, by its path from the workspace root.
pub fn workspace_file(path: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}
