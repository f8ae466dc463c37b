//! `.h5ad`: scanpy's pbmc68k_reduced (the old compound layout) reads as anndata reads it;
//! what we write reads back equal; broken files give typed errors and leave nothing behind.
//! (That anndata itself opens our files is checked in tests/e2e, in a Python venv.)

use cellwright_data::h5ad::{self, H5adError};
use cellwright_data::matrix::{Column, ExpressionMatrix, Values};
use sprs::CompressedStorage;

use crate::{close, dataset, expected};

fn pbmc68k() -> ExpressionMatrix {
    let files = dataset("pbmc68k_reduced");
    h5ad::read(&files[0]).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_old_layout_of_pbmc68k_reduced_reads_as_anndata_reads_it() {
    let fx = &expected()["pbmc68k_reduced"];
    let m = pbmc68k();
    assert_eq!(m.shape(), (700, 765));
    assert_eq!(m.cells()[..3], strings(&fx["cells"])[..]);
    assert_eq!(m.genes()[..3], strings(&fx["genes"])[..]);
    let kinds: serde_json::Map<String, serde_json::Value> = m
        .obs
        .iter()
        .map(|(name, col)| (name.clone(), col.kind().into()))
        .collect();
    assert_eq!(serde_json::Value::Object(kinds), fx["obs_kinds"]);
    let var_kinds: serde_json::Map<String, serde_json::Value> = m
        .var
        .iter()
        .map(|(name, col)| (name.clone(), col.kind().into()))
        .collect();
    assert_eq!(serde_json::Value::Object(var_kinds), fx["var_kinds"]);

    let labels = m.obs_column("bulk_labels").unwrap();
    let Column::Categorical { categories, .. } = labels else {
        panic!("{labels:?}")
    };
    assert_eq!(*categories, strings(&fx["bulk_label_categories"]));
    let first: Vec<String> = (0..5)
        .map(|i| labels.label(i).unwrap().to_owned())
        .collect();
    assert_eq!(first, strings(&fx["bulk_labels"]));
    let n_genes: Vec<i64> = (0..5)
        .map(|i| m.obs_column("n_genes").unwrap().number(i).unwrap() as i64)
        .collect();
    assert_eq!(serde_json::json!(n_genes), fx["n_genes"]);
    let mito = m.obs_column("percent_mito").unwrap();
    for (i, want) in fx["percent_mito"].as_array().unwrap().iter().enumerate() {
        assert!(close(mito.number(i).unwrap(), want.as_f64().unwrap(), 1e-7));
    }
    let hv = m.var.iter().find(|(n, _)| n == "highly_variable").unwrap();
    let Column::Bool(flags) = &hv.1 else { panic!() };
    assert_eq!(
        flags.iter().filter(|&&b| b).count() as u64,
        fx["highly_variable"].as_u64().unwrap()
    );

    let x = m.x().to_dense();
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    assert!(close(sum, fx["x_sum"].as_f64().unwrap(), 1e-6), "{sum}");
    for (j, want) in fx["x_row0"].as_array().unwrap().iter().enumerate() {
        assert_eq!(f64::from(x[[0, j]]), want.as_f64().unwrap());
    }
    let raw = &m.layers["raw"];
    assert!(matches!(raw, Values::Sparse(s) if s.is_csr()));
    assert_eq!(raw.stored() as u64, fx["raw_nnz"].as_u64().unwrap());
    let raw_sum: f64 = raw.row_sums().iter().sum();
    assert!(close(raw_sum, fx["raw_sum"].as_f64().unwrap(), 1e-9));
    let raw = raw.to_dense();
    for (j, want) in fx["raw_row0"].as_array().unwrap().iter().enumerate() {
        assert_eq!(f64::from(raw[[0, j]]), want.as_f64().unwrap());
    }
    assert_eq!(m.obsm["X_pca"].dim(), (700, 50));
    assert_eq!(m.obsm["X_umap"].dim(), (700, 2));
    for (j, want) in fx["x_pca_row0"].as_array().unwrap().iter().enumerate() {
        assert_eq!(f64::from(m.obsm["X_pca"][[0, j]]), want.as_f64().unwrap());
    }
    assert!(close(
        f64::from(m.obsm["X_umap"][[0, 1]]),
        fx["x_umap_row0"][1].as_f64().unwrap(),
        1e-6
    ));
}

/// pbmc68k_reduced with one column of every kind, a CSC layer and a sparse X.
pub fn every_kind(storage: CompressedStorage) -> ExpressionMatrix {
    let mut m = pbmc68k();
    let raw = m.layers.remove("raw").unwrap();
    let scaled = m.x().clone();
    let (n, _) = m.shape();
    let csr = match raw {
        Values::Sparse(s) => s,
        Values::Dense(_) => unreachable!("pbmc68k's raw X is CSR"),
    };
    let x = match storage {
        CompressedStorage::CSR => Values::Sparse(csr.clone()),
        CompressedStorage::CSC => Values::Sparse(csr.to_csc()),
    };
    let mut out = ExpressionMatrix::new(x, m.cells().to_vec(), m.genes().to_vec()).unwrap();
    out.obs = std::mem::take(&mut m.obs);
    out.obs.push((
        "doublet".into(),
        Column::Bool((0..n).map(|i| i % 7 == 0).collect()),
    ));
    out.obs.push((
        "barcode".into(),
        Column::Text(m.cells().iter().map(|c| format!("{c}·β")).collect()),
    ));
    out.obs.push((
        "stage".into(),
        Column::Categorical {
            categories: vec!["early".into(), "late".into()],
            codes: (0..n)
                .map(|i| if i % 5 == 0 { -1 } else { (i % 2) as i32 })
                .collect(),
            ordered: true,
        },
    ));
    out.var = std::mem::take(&mut m.var);
    out.layers.insert("scaled".into(), scaled);
    out.layers
        .insert("counts_csc".into(), Values::Sparse(csr.to_csc()));
    out.obsm = std::mem::take(&mut m.obsm);
    out
}

#[test]
fn what_we_write_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    for storage in [CompressedStorage::CSR, CompressedStorage::CSC] {
        let m = every_kind(storage);
        let path = dir.path().join(format!("{storage:?}.h5ad"));
        h5ad::write(&m, &path).unwrap();
        let back = h5ad::read(&path).unwrap();
        // Integer columns come back as written; so does everything else.
        assert_eq!(back, m, "{storage:?}");
    }
    // Only the finished file is left.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn broken_files_give_typed_errors_and_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.h5ad");
    h5ad::write(&every_kind(CompressedStorage::CSR), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let not_hdf5 = dir.path().join("text.h5ad");
    std::fs::write(&not_hdf5, "cell\tgene\n").unwrap();
    match h5ad::read(&not_hdf5) {
        Err(e @ H5adError::Format { .. }) => {
            assert!(e.to_string().contains("not an HDF5 file"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h5ad::read(&dir.path().join("missing.h5ad")),
        Err(H5adError::Io { .. })
    ));

    // Cut at many places: every cut is an error naming the file, never a panic.
    for keep in [
        8,
        100,
        512,
        2048,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1000,
    ] {
        let cut = dir.path().join(format!("cut{keep}.h5ad"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = h5ad::read(&cut).unwrap_err();
        assert!(
            err.to_string().contains(&format!("cut{keep}.h5ad")),
            "{err}"
        );
    }
    // Bytes flipped in the middle: an error or a read that still validates, never a panic.
    let mut flipped = bytes.clone();
    for i in (bytes.len() / 2..bytes.len() / 2 + 64).step_by(3) {
        flipped[i] ^= 0x5a;
    }
    let corrupt = dir.path().join("corrupt.h5ad");
    std::fs::write(&corrupt, &flipped).unwrap();
    if let Ok(m) = h5ad::read(&corrupt) {
        m.validate().unwrap();
    }

    // Found by `cargo fuzz`: a dataspace claiming ~2^61 values must not be allocated for.
    let huge = crate::workspace_file("tests/data/h5ad/huge_dataspace.h5ad");
    // Our size check refuses it, unless libhdf5 already refuses to open the object.
    match h5ad::read(&huge) {
        Err(e @ H5adError::Format { .. }) => assert!(e.to_string().contains("declares"), "{e}"),
        Err(H5adError::Hdf5 { object, .. }) => assert_eq!(object, "X"),
        other => panic!("{other:?}"),
    }

    // A write that fails leaves the old file as it was and no partial file beside it.
    let mut bad = every_kind(CompressedStorage::CSR);
    bad.obs.push(("short".into(), Column::Int(vec![1, 2, 3])));
    assert!(matches!(
        h5ad::write(&bad, &good),
        Err(H5adError::Matrix { .. })
    ));
    let mut reserved = every_kind(CompressedStorage::CSR);
    reserved
        .obs
        .push(("_index".into(), Column::Int(vec![0; 700])));
    assert!(matches!(
        h5ad::write(&reserved, &good),
        Err(H5adError::Format { .. })
    ));
    assert_eq!(std::fs::read(&good).unwrap(), bytes);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Rewrites the sparse `X` of `path` with `indices` and `indptr` stored as `T` and as `P`.
fn restore_index<T: hdf5::H5Type + Copy, P: hdf5::H5Type + Copy>(
    path: &std::path::Path,
    indices: &[T],
    indptr: &[P],
) {
    let file = hdf5::File::open_rw(path).unwrap();
    let x = file.group("X").unwrap();
    x.unlink("indices").unwrap();
    x.unlink("indptr").unwrap();
    x.new_dataset_builder()
        .with_data(indices)
        .create("indices")
        .unwrap();
    x.new_dataset_builder()
        .with_data(indptr)
        .create("indptr")
        .unwrap();
}

#[test]
fn sparse_indices_of_every_stored_width_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let m = every_kind(CompressedStorage::CSR);
    let Values::Sparse(csr) = m.x() else {
        panic!("every_kind has a sparse X")
    };
    let indices: Vec<u32> = csr.indices().to_vec();
    let indptr: Vec<usize> = csr.proper_indptr().to_vec();
    let path = dir.path().join("widths.h5ad");
    let read_back = |path: &std::path::Path| h5ad::read(path).map(|r| r.x().to_dense());

    h5ad::write(&m, &path).unwrap();
    let wide: Vec<i64> = indices.iter().map(|&i| i64::from(i)).collect();
    let wide_ptr: Vec<i64> = indptr.iter().map(|&i| i as i64).collect();
    restore_index(&path, &wide, &wide_ptr);
    assert_eq!(read_back(&path).unwrap(), m.x().to_dense(), "int64");

    let small: Vec<u16> = indices.iter().map(|&i| i as u16).collect();
    let unsigned_ptr: Vec<u32> = indptr.iter().map(|&i| i as u32).collect();
    restore_index(&path, &small, &unsigned_ptr);
    assert_eq!(read_back(&path).unwrap(), m.x().to_dense(), "uint16/uint32");

    // Chunked data (as a compressing writer leaves it) goes through libhdf5, not the direct read.
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        let x = file.group("X").unwrap();
        x.unlink("data").unwrap();
        x.new_dataset_builder()
            .chunk(1000)
            .with_data(csr.data())
            .create("data")
            .unwrap();
    }
    assert_eq!(read_back(&path).unwrap(), m.x().to_dense(), "chunked data");

    let mut negative: Vec<i32> = indices.iter().map(|&i| i as i32).collect();
    negative[1] = -4;
    restore_index(&path, &negative, &unsigned_ptr);
    let err = read_back(&path).unwrap_err();
    assert!(
        err.to_string().contains("X/indices: negative value -4"),
        "{err}"
    );

    let mut huge = wide.clone();
    huge[0] = 1 << 40;
    restore_index(&path, &huge, &wide_ptr);
    let err = read_back(&path).unwrap_err();
    assert!(err.to_string().contains("exceeds the u32 range"), "{err}");
}
