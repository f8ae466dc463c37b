//! Every catalogue Boolean model parses; the small ones' signed edges, fixed points and
//! attractors equal those a brute-force Python script computed on the same files
//! (`tests/data/boolean/make_fixture.py`).

use std::collections::BTreeMap;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::{BooleanNetwork, Sign};
use cellwright_data::catalogue;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    models: BTreeMap<String, Reference>,
}

#[derive(Deserialize)]
struct Reference {
    nodes: Vec<String>,
    edges: Option<Vec<(String, String, Sign)>>,
    fixed_points: Option<Vec<u64>>,
    sync_attractors: Option<Vec<Vec<u64>>>,
    async_attractors: Option<Vec<Vec<u64>>>,
}

fn sorted(mut states: Vec<u64>) -> Vec<u64> {
    states.sort_unstable();
    states
}

#[test]
fn catalogue_models_match_an_independent_brute_force() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../../../tests/data/boolean/models.json")).unwrap();
    let mut checked = BTreeMap::new();
    for name in ["pyboolnet-models", "cell-collective-models"] {
        let files = catalogue::find(name)
            .unwrap()
            .fetch(&NoProgress, &CancelToken::new())
            .unwrap();
        assert!(files.len() > 20, "{name}: {} files", files.len());
        for path in files {
            let key = if name == "pyboolnet-models" {
                let model = path.file_stem().unwrap().to_string_lossy().into_owned();
                if model == "multivalued" {
                    // Not Boolean (levels of one gene as separate nodes); not in the fixture.
                    continue;
                }
                format!("pyboolnet/{model}")
            } else {
                format!(
                    "cell_collective/{}",
                    path.file_name().unwrap().to_string_lossy()
                )
            };
            let net = BooleanNetwork::read(&path).unwrap_or_else(|e| panic!("{e}"));
            let reference = fixture
                .models
                .get(&key)
                .unwrap_or_else(|| panic!("{key} is not in the fixture"));
            assert_eq!(net.nodes(), reference.nodes, "{key}");
            if let Some(edges) = &reference.edges {
                let ours: Vec<(String, String, Sign)> = net
                    .edges()
                    .into_iter()
                    .map(|e| (e.from, e.to, e.sign))
                    .collect();
                assert_eq!(&ours, edges, "{key}");
            }
            if let Some(fixed) = &reference.fixed_points {
                assert_eq!(&net.fixed_points().unwrap(), fixed, "{key}");
            }
            if let Some(cycles) = &reference.sync_attractors {
                let mut ours: Vec<Vec<u64>> = net
                    .attractors_sync()
                    .unwrap()
                    .into_iter()
                    .map(|a| sorted(a.states))
                    .collect();
                ours.sort();
                assert_eq!(&ours, cycles, "{key}");
            }
            if let Some(sets) = &reference.async_attractors {
                let ours: Vec<Vec<u64>> = net
                    .attractors_async()
                    .unwrap()
                    .into_iter()
                    .map(|a| a.states)
                    .collect();
                assert_eq!(&ours, sets, "{key}");
            }
            // Written as .bnet and read back, the dynamics are the same.
            let again = BooleanNetwork::parse_bnet(&net.to_bnet(), &key).unwrap();
            assert_eq!(again.nodes(), net.nodes(), "{key}");
            if net.len() <= 16 {
                for state in (0..1u64 << net.len()).step_by(7) {
                    assert_eq!(again.step(state), net.step(state), "{key}");
                }
            }
            checked.insert(key, reference.fixed_points.is_some());
        }
    }
    assert_eq!(
        checked.len(),
        fixture.models.len(),
        "every fixture model was found"
    );
    assert!(checked.values().filter(|d| **d).count() >= 30);
}
