//! Any text as a .bnet and a Cell Collective model; small parsed models are then solved.
#![no_main]
use cellwright_data::boolean::BooleanNetwork;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for parsed in [
        BooleanNetwork::parse_bnet(text, "fuzz.bnet"),
        BooleanNetwork::parse_cell_collective(text, "fuzz.txt"),
    ] {
        if let Ok(net) = parsed {
            let _ = net.to_bnet();
            if net.len() <= 8 {
                let _ = net.attractors_sync();
                let _ = net.fixed_points();
            }
        }
    }
});
