//! Any bytes as a Matrix Market file, then as a CSR matrix: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.mtx");
    if let Ok(c) = cellwright_data::text::parse_mtx(data, path) {
        // `read_10x` builds the matrix only once a name file has matched each row and
        // column, so a matrix has at most as many rows and columns as its inputs have lines.
        if c.rows.max(c.cols) <= data.len() {
            let _ = cellwright_data::text::csr_from_entries((c.rows, c.cols), c.entries);
        }
    }
});
