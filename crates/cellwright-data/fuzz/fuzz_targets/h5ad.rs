//! Any bytes as an .h5ad file: an error or a matrix that validates, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.h5ad");
    std::fs::write(&path, data).unwrap();
    if let Ok(m) = cellwright_data::h5ad::read(&path) {
        m.validate().unwrap();
    }
});
