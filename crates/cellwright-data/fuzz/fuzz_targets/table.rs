//! Any bytes as a TSV and a CSV table, both ways round: errors, never panics.
#![no_main]
use cellwright_data::text::{Orientation, parse_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.tsv");
    for (delimiter, orientation) in [(b'\t', Orientation::GenesByCells), (b',', Orientation::CellsByGenes)] {
        if let Ok(m) = parse_table(data, path, delimiter, orientation) {
            m.validate().unwrap();
        }
    }
});
