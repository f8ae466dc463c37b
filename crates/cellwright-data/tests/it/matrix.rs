//! Normalisation, highly variable genes and PCA on Seurat's pbmc_raw equal scanpy's and
//! numpy's (`tests/data/matrix/make_fixture.py`); sparse and dense give the same numbers;
//! selections keep names and annotations together.

use cellwright_data::matrix::{
    Column, ExpressionMatrix, MatrixError, PcaSolver, Values, make_unique,
};
use cellwright_data::text::{Orientation, read_table};
use ndarray::Array2;
use sprs::CompressedStorage;

use crate::{close, dataset, expected};

fn pbmc_raw() -> ExpressionMatrix {
    read_table(&dataset("pbmc_raw")[0], Orientation::GenesByCells).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn to_sparse(m: &ExpressionMatrix, storage: CompressedStorage) -> ExpressionMatrix {
    let dense = m.x().to_dense();
    let (outer, inner) = match storage {
        CompressedStorage::CSR => (dense.nrows(), dense.ncols()),
        CompressedStorage::CSC => (dense.ncols(), dense.nrows()),
    };
    let mut indptr = vec![0];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for o in 0..outer {
        for i in 0..inner {
            let v = match storage {
                CompressedStorage::CSR => dense[[o, i]],
                CompressedStorage::CSC => dense[[i, o]],
            };
            if v != 0.0 {
                indices.push(i as u32);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    let x = Values::sparse(storage, dense.dim(), indptr, indices, data).unwrap();
    ExpressionMatrix::new(x, m.cells().to_vec(), m.genes().to_vec()).unwrap()
}

#[test]
fn normalisation_and_highly_variable_genes_equal_scanpy_on_pbmc_raw() {
    let fx = &expected()["pbmc_raw"];
    let dense = pbmc_raw();
    assert_eq!(dense.shape(), (80, 230));
    assert_eq!(
        dense.cells()[..3],
        ["ATGCCAGAACGACT", "CATGGCCTGTGCAT", "GAACCTGATGAACC"]
    );
    assert_eq!(dense.genes()[..3], ["MS4A1", "CD79B", "CD79A"]);
    let totals = dense.x().row_sums();
    assert_eq!(totals.iter().sum::<f64>(), fx["total"].as_f64().unwrap());
    assert_eq!(totals[..5], floats(&fx["cell_totals"])[..]);

    for storage in [
        None,
        Some(CompressedStorage::CSR),
        Some(CompressedStorage::CSC),
    ] {
        let mut m = match storage {
            None => dense.clone(),
            Some(s) => to_sparse(&dense, s),
        };
        m.normalize_total(None);
        m.log1p();
        let x = m.x().to_dense();
        let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!(
            close(sum, fx["normalized_sum"].as_f64().unwrap(), 1e-6),
            "{storage:?}: {sum}"
        );
        for (j, want) in floats(&fx["normalized_row0"]).into_iter().enumerate() {
            assert!(
                close(f64::from(x[[0, j]]), want, 1e-6),
                "{storage:?} [0,{j}]"
            );
        }
        let hv = m.highly_variable_genes(20);
        let mut top: Vec<&str> = hv.top.iter().map(|&j| m.genes()[j].as_str()).collect();
        top.sort_unstable();
        let want: Vec<&str> = fx["hvg_top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(top, want, "{storage:?}");
        for (ours, theirs) in hv.means.iter().zip(floats(&fx["hvg_means"])) {
            assert!(close(*ours, theirs, 1e-5), "mean {ours} vs {theirs}");
        }
        for (ours, theirs) in hv.dispersions.iter().zip(floats(&fx["hvg_dispersions"])) {
            assert!(close(*ours, theirs, 1e-4), "dispersion {ours} vs {theirs}");
        }
        for (j, (ours, theirs)) in hv
            .dispersions_norm
            .iter()
            .zip(floats(&fx["hvg_dispersions_norm"]))
            .enumerate()
        {
            assert!(
                ours.is_nan() && theirs.is_nan() || close(*ours, theirs, 1e-3),
                "normalised dispersion of {}: {ours} vs {theirs}",
                m.genes()[j]
            );
        }
    }
}

#[test]
fn pca_explains_the_variance_numpy_finds_with_every_solver_and_storage() {
    let fx = &expected()["pbmc_raw"];
    let mut m = pbmc_raw();
    m.normalize_total(None);
    m.log1p();
    let ratios = floats(&fx["pca_explained_variance_ratio"]);
    let scores = floats(&fx["pca_abs_scores_row0"]);
    let randomized = PcaSolver::Randomized {
        oversamples: 10,
        power_iterations: 6,
        seed: 7,
    };
    for (storage, solver) in [
        (None, PcaSolver::Exact),
        (None, randomized),
        (Some(CompressedStorage::CSR), randomized),
        (Some(CompressedStorage::CSC), PcaSolver::Exact),
    ] {
        let m = match storage {
            None => m.clone(),
            Some(s) => to_sparse(&m, s),
        };
        let pca = m.pca(10, solver).unwrap();
        assert_eq!(pca.scores.dim(), (80, 10));
        assert_eq!(pca.loadings.dim(), (230, 10));
        // Randomized SVD is exact on the leading components and close on the later ones.
        let tol = if solver == PcaSolver::Exact {
            1e-5
        } else {
            1e-2
        };
        for (k, (ours, theirs)) in pca.explained_variance_ratio.iter().zip(&ratios).enumerate() {
            assert!(
                close(*ours, *theirs, tol),
                "{storage:?} {solver:?} PC{k}: {ours} vs {theirs}"
            );
        }
        for (k, want) in scores.iter().take(3).enumerate() {
            let ours = f64::from(pca.scores[[0, k]].abs());
            assert!(
                close(ours, *want, tol.max(1e-4)),
                "{storage:?} {solver:?} score PC{k}: {ours} vs {want}"
            );
        }
        // Loadings are orthonormal.
        let gram = pca.loadings.t().dot(&pca.loadings);
        for ((i, j), v) in gram.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-4, "loadings' Gram [{i},{j}] = {v}");
        }
    }
    assert!(matches!(
        m.pca(0, PcaSolver::Auto),
        Err(MatrixError::Invalid(_))
    ));
    assert!(matches!(
        m.pca(81, PcaSolver::Auto),
        Err(MatrixError::Invalid(_))
    ));
}

#[test]
fn selections_keep_names_annotations_and_values_together() {
    let mut m = pbmc_raw();
    let cells = m.cells().to_vec();
    m.obs
        .push(("total".into(), Column::Float(m.x().row_sums())));
    m.obs.push((
        "half".into(),
        Column::Categorical {
            categories: vec!["first".into(), "second".into()],
            codes: (0..80).map(|i| i32::from(i >= 40)).collect(),
            ordered: false,
        },
    ));
    m.layers.insert(
        "counts".into(),
        to_sparse(&m, CompressedStorage::CSC).x().clone(),
    );
    let picked = m
        .select_cells(&[&cells[50], &cells[3]])
        .unwrap()
        .select_genes(&["CD79A", "MS4A1"])
        .unwrap();
    assert_eq!(picked.shape(), (2, 2));
    assert_eq!(picked.cells(), [cells[50].clone(), cells[3].clone()]);
    let full = m.x().to_dense();
    let (a, b) = (
        m.gene_position("CD79A").unwrap(),
        m.gene_position("MS4A1").unwrap(),
    );
    let want = ndarray::array![[full[[50, a]], full[[50, b]]], [full[[3, a]], full[[3, b]]]];
    assert_eq!(picked.x().to_dense(), want);
    assert_eq!(picked.layers["counts"].to_dense(), want);
    assert_eq!(picked.obs_column("half").unwrap().label(0), Some("second"));
    assert_eq!(picked.obs_column("half").unwrap().label(1), Some("first"));
    assert_eq!(
        picked.obs_column("total").unwrap().number(1),
        m.obs_column("total").unwrap().number(3)
    );

    match m.select_genes(&["CD79AA"]) {
        Err(MatrixError::UnknownName {
            name, suggestions, ..
        }) => {
            assert_eq!(name, "CD79AA");
            assert!(
                suggestions.contains(&"CD79A".to_string()),
                "{suggestions:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Picking a name twice would make the names repeat.
    assert!(matches!(
        m.select_genes(&["CD79A", "CD79A"]),
        Err(MatrixError::DuplicateName { .. })
    ));
}

#[test]
fn bad_shapes_and_names_are_refused() {
    let x = || Values::Dense(Array2::zeros((2, 3)));
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches!(
        ExpressionMatrix::new(x(), names(&["a"]), names(&["g1", "g2", "g3"])),
        Err(MatrixError::Shape {
            expected: 2,
            found: 1,
            ..
        })
    ));
    match ExpressionMatrix::new(x(), names(&["a", "b"]), names(&["g1", "g2", "g1"])) {
        Err(MatrixError::DuplicateName {
            name,
            first: 0,
            second: 2,
            ..
        }) => assert_eq!(name, "g1"),
        other => panic!("{other:?}"),
    }
    let mut m = ExpressionMatrix::new(x(), names(&["a", "b"]), names(&["g1", "g2", "g3"])).unwrap();
    m.obs.push(("short".into(), Column::Int(vec![1])));
    assert!(matches!(m.validate(), Err(MatrixError::Shape { .. })));

    // Sparse structure: indptr length, decreasing indptr, index out of range, repeated index.
    let csr = |indptr: Vec<usize>, indices: Vec<u32>| {
        let n = indices.len();
        Values::sparse(
            CompressedStorage::CSR,
            (2, 3),
            indptr,
            indices,
            vec![1.0; n],
        )
    };
    assert!(csr(vec![0, 1], vec![0]).is_err());
    assert!(csr(vec![0, 2, 1], vec![0, 1]).is_err());
    assert!(csr(vec![0, 1, 2], vec![0, 3]).is_err());
    assert!(csr(vec![0, 2, 2], vec![1, 1]).is_err());
    // Unsorted indices are sorted, not refused.
    let ok = csr(vec![0, 2, 2], vec![2, 0]).unwrap();
    assert_eq!(
        ok.to_dense(),
        ndarray::array![[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    );
}

#[test]
fn repeated_names_are_made_unique_as_anndata_does() {
    let mut names: Vec<String> = ["A", "B", "A", "A-1", "A"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    make_unique(&mut names);
    assert_eq!(names, ["A", "B", "A-2", "A-1", "A-3"]);
}
