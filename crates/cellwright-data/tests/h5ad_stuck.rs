//! A file that sends libhdf5 into an endless loop (found by `cargo fuzz`: a corrupt global
//! heap behind a variable-length string attribute). The read gives up at its deadline with a
//! typed error, and since the stuck libhdf5 thread holds the library's lock, every later
//! read or write fails at once rather than hanging. Its own test binary: it leaves libhdf5
//! unusable for the rest of the process.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use cellwright_data::h5ad::{self, H5adError};

fn workspace_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

#[test]
fn a_read_that_libhdf5_never_finishes_is_given_up_and_later_calls_fail_fast() {
    let looping = workspace_file("tests/data/h5ad/libhdf5_loops.h5ad");
    let good = workspace_file("tests/data/h5ad/huge_dataspace.h5ad");

    let deadline = Duration::from_secs(3);
    match h5ad::read_within(&looping, deadline) {
        Err(H5adError::Stuck { path, after }) => {
            assert_eq!(path, looping);
            assert_eq!(after, deadline);
        }
        other => panic!("expected the read to be given up, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    for err in [
        h5ad::read(&good).map(|_| ()).unwrap_err(),
        h5ad::write(&tiny(), &dir.path().join("never-written.h5ad")).unwrap_err(),
    ] {
        match &err {
            H5adError::Unavailable { stuck_on, .. } => assert_eq!(stuck_on, &looping),
            other => panic!("expected a fast failure, got {other:?}"),
        }
        assert!(err.to_string().contains("restart"), "{err}");
    }
}

fn tiny() -> cellwright_data::matrix::ExpressionMatrix {
    use cellwright_data::matrix::{ExpressionMatrix, Values};
    let x = Values::Dense(ndarray::Array2::zeros((1, 1)));
    ExpressionMatrix::new(x, vec!["c".into()], vec!["g".into()]).unwrap()
}
