//! 10x Matrix Market directories and delimited tables: values, names and orientation come
//! through; malformed files name the file and line.

use std::io::Write;
use std::path::Path;

use cellwright_data::matrix::Column;
use cellwright_data::text::{Orientation, TextError, parse_mtx, read_10x, read_table};

use crate::dataset;

fn write(path: &Path, text: &str) {
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

/// pbmc_raw (genes × cells) rewritten as a Cell Ranger v3 directory, gzipped.
fn tenx_from_pbmc_raw(dir: &Path) -> cellwright_data::matrix::ExpressionMatrix {
    let table = read_table(&dataset("pbmc_raw")[0], Orientation::GenesByCells).unwrap();
    let x = table.x().to_dense();
    let mut entries = String::new();
    let mut count = 0;
    for ((cell, gene), &v) in x.indexed_iter() {
        if v != 0.0 {
            entries.push_str(&format!("{} {} {v}\n", gene + 1, cell + 1));
            count += 1;
        }
    }
    let (cells, genes) = table.shape();
    write(
        &dir.join("matrix.mtx.gz"),
        &format!(
            "%%MatrixMarket matrix coordinate integer general\n%metadata_json: {{}}\n{genes} {cells} {count}\n{entries}"
        ),
    );
    // Two genes share a symbol, as real feature lists do.
    let features: String = table
        .genes()
        .iter()
        .enumerate()
        .map(|(j, g)| {
            format!(
                "ENSG{j:011}\t{}\tGene Expression\n",
                if j == 5 { "MS4A1" } else { g }
            )
        })
        .collect();
    write(&dir.join("features.tsv.gz"), &features);
    write(
        &dir.join("barcodes.tsv.gz"),
        &table
            .cells()
            .iter()
            .map(|c| format!("{c}-1\n"))
            .collect::<String>(),
    );
    table
}

#[test]
fn a_cell_ranger_directory_reads_as_cells_by_genes() {
    let dir = tempfile::tempdir().unwrap();
    let table = tenx_from_pbmc_raw(dir.path());
    let m = read_10x(dir.path()).unwrap();
    assert_eq!(m.shape(), table.shape());
    assert_eq!(m.x().to_dense(), table.x().to_dense());
    assert_eq!(m.cells()[0], format!("{}-1", table.cells()[0]));
    assert_eq!(m.genes()[0], "MS4A1");
    assert_eq!(m.genes()[5], "MS4A1-1", "repeated symbols are made unique");
    let ids = &m.var.iter().find(|(n, _)| n == "gene_ids").unwrap().1;
    assert_eq!(ids.label(5), Some("ENSG00000000005"));
    assert!(matches!(&m.var[1].1, Column::Text(t) if t[0] == "Gene Expression"));

    std::fs::remove_file(dir.path().join("barcodes.tsv.gz")).unwrap();
    match read_10x(dir.path()) {
        Err(TextError::Missing { what, .. }) => assert_eq!(what, "barcodes"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tables_read_either_way_round_with_or_without_a_corner_cell() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("t.tsv");
    write(&tsv, "c1\tc2\tc3\ng1\t1\t0\t2\ng2\t0\t5\t0\n");
    let m = read_table(&tsv, Orientation::GenesByCells).unwrap();
    assert_eq!(m.cells(), ["c1", "c2", "c3"]);
    assert_eq!(m.genes(), ["g1", "g2"]);
    assert_eq!(
        m.x().to_dense(),
        ndarray::array![[1.0, 0.0], [0.0, 5.0], [2.0, 0.0]]
    );
    let csv = dir.path().join("t.csv.gz");
    write(&csv, "cell,g1,g2\nc1,1,0.5\nc2,3,4\n");
    let m = read_table(&csv, Orientation::CellsByGenes).unwrap();
    assert_eq!(m.cells(), ["c1", "c2"]);
    assert_eq!(m.genes(), ["g1", "g2"]);
    assert_eq!(m.x().to_dense(), ndarray::array![[1.0, 0.5], [3.0, 4.0]]);
}

#[test]
fn malformed_text_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let line_of = |e: TextError| match e {
        TextError::Format { line, message, .. } => (line, message),
        other => panic!("{other:?}"),
    };
    let tsv = dir.path().join("bad.tsv");
    write(&tsv, "c1\tc2\ng1\t1\t2\ng2\t1\tx\n");
    let (line, message) = line_of(read_table(&tsv, Orientation::GenesByCells).unwrap_err());
    assert_eq!(line, 3);
    assert!(message.contains("\"x\" is not a number"), "{message}");
    write(&tsv, "c1\tc2\ng1\t1\t2\ng2\t1\n");
    assert_eq!(
        line_of(read_table(&tsv, Orientation::GenesByCells).unwrap_err()).0,
        3
    );
    write(&tsv, "c1\tc2\ng1\t1\t2\ng1\t1\t3\n");
    assert!(matches!(
        read_table(&tsv, Orientation::GenesByCells),
        Err(TextError::Matrix { .. })
    ));

    let mtx = |text: &str| parse_mtx(text.as_bytes(), Path::new("m.mtx"));
    let head = "%%MatrixMarket matrix coordinate real general\n";
    for (text, want_line, words) in [
        ("", 1, "empty"),
        (
            "%%MatrixMarket matrix array real general\n2 2\n",
            1,
            "not a Matrix Market coordinate",
        ),
        (&format!("{head}2 2\n") as &str, 2, "rows columns entries"),
        (
            &format!("{head}% c\n2 2 1\n3 1 1.0\n"),
            4,
            "row \"3\" is not within 1..=2",
        ),
        (&format!("{head}2 2 1\n1 0 1.0\n"), 3, "column \"0\""),
        (&format!("{head}2 2 1\n1 1 one\n"), 3, "not a number"),
        (
            &format!("{head}2 2 2\n1 1 1\n"),
            3,
            "1 entries, but the size line declared 2",
        ),
        (
            &format!("{head}2 2 1\n1 1 1\n2 2 2\n"),
            4,
            "more entries than the 1 declared",
        ),
        (&format!("{head}2 2 99999999999999\n1 1 1\n"), 3, "declared"),
        // Found by `cargo fuzz`: a size line claiming 3e16 rows.
        (
            &format!("{head}33333333333333339 2 1\n2 2 7\n"),
            2,
            "beyond the 2^31",
        ),
    ] {
        let (line, message) = line_of(mtx(text).unwrap_err());
        assert_eq!(line, want_line, "{text:?}: {message}");
        assert!(message.contains(words), "{text:?}: {message}");
    }
    let ok = mtx(&format!("{head}2 3 3\n1 1 1.5\n2 3 -2\n1 1 0.5\n")).unwrap();
    assert_eq!((ok.rows, ok.cols, ok.entries.len()), (2, 3, 3));
}
