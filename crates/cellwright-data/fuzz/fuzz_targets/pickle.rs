//! Any bytes as a pickle: a value or an error at an offset, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cellwright_data::pickle::Pickle::parse(data);
});
