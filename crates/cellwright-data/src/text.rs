//! Plain-text expression formats: the 10x Genomics Matrix Market directory
//! (`matrix.mtx[.gz]`, `features.tsv[.gz]` or `genes.tsv[.gz]`, `barcodes.tsv[.gz]`) and dense
//! delimited tables (TSV, CSV; gzip allowed), genes × cells as R writes them or cells × genes.
//! Errors name the file, the line and, where it helps, the column.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::Array2;
use sprs::CompressedStorage;

use crate::matrix::{Column, ExpressionMatrix, MatrixError, Values, make_unique};

/// Why a text matrix could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {source}")]
    Matrix {
        path: PathBuf,
        #[source]
        source: MatrixError,
    },
    #[error("{dir}: no {what} (looked for {looked_for})")]
    Missing {
        dir: PathBuf,
        what: &'static str,
        looked_for: String,
    },
}

/// Which way round a table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// One row per gene, one column per cell (R, Seurat, most GEO tables).
    #[default]
    GenesByCells,
    /// One row per cell, one column per gene (pandas, AnnData).
    CellsByGenes,
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, TextError> {
    let file = std::fs::File::open(path).map_err(|source| TextError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    Ok(if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

fn bad(path: &Path, line: u64, message: impl Into<String>) -> TextError {
    TextError::Format {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Entries of a Matrix Market file: its shape and (row, column, value), 0-based.
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinates {
    pub rows: usize,
    pub cols: usize,
    pub entries: Vec<(usize, usize, f32)>,
}

/// Parses a Matrix Market `coordinate` file (`real`, `integer` or `pattern`; `general`).
/// `path` only names the source in errors.
pub fn parse_mtx(reader: impl Read, path: &Path) -> Result<Coordinates, TextError> {
    let mut lines = BufReader::new(reader).lines().zip(1u64..);
    let mut number = 0u64;
    let next_line = |lines: &mut dyn Iterator<Item = (std::io::Result<String>, u64)>| {
        lines
            .next()
            .map(|(line, n)| {
                line.map(|l| (l, n)).map_err(|source| TextError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            })
            .transpose()
    };
    let (header, _) = next_line(&mut lines)?.ok_or_else(|| bad(path, 1, "empty file"))?;
    let words: Vec<String> = header.split_whitespace().map(str::to_lowercase).collect();
    let [banner, object, format, field, symmetry] = &words[..] else {
        return Err(bad(
            path,
            1,
            "expected `%%MatrixMarket matrix coordinate <field> <symmetry>`",
        ));
    };
    if banner != "%%matrixmarket" || object != "matrix" || format != "coordinate" {
        return Err(bad(
            path,
            1,
            format!("not a Matrix Market coordinate matrix: {header:?}"),
        ));
    }
    let pattern = match field.as_str() {
        "real" | "integer" | "double" => false,
        "pattern" => true,
        other => {
            return Err(bad(
                path,
                1,
                format!("unsupported field {other:?} (real, integer or pattern)"),
            ));
        }
    };
    if symmetry != "general" {
        return Err(bad(
            path,
            1,
            format!("unsupported symmetry {symmetry:?} (only general)"),
        ));
    }
    let (size, size_line) = loop {
        let (line, n) =
            next_line(&mut lines)?.ok_or_else(|| bad(path, number + 1, "no size line"))?;
        number = n;
        if !line.starts_with('%') && !line.trim().is_empty() {
            break (line, n);
        }
    };
    let numbers: Vec<usize> = size
        .split_whitespace()
        .map(|w| w.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad(
                path,
                size_line,
                format!("expected `rows columns entries`, found {size:?}"),
            )
        })?;
    let [rows, cols, count] = numbers[..] else {
        return Err(bad(
            path,
            size_line,
            format!("expected `rows columns entries`, found {size:?}"),
        ));
    };
    if rows.max(cols) > i32::MAX as usize {
        return Err(bad(
            path,
            size_line,
            format!(
                "{rows} × {cols} is beyond the 2^31 − 1 rows and columns AnnData and 10x allow"
            ),
        ));
    }
    // The count is only a claim until the lines are read: reserve little up front.
    let mut entries = Vec::with_capacity(count.min(1 << 20));
    while let Some((line, line_no)) = next_line(&mut lines)? {
        number = line_no;
        if line.trim().is_empty() || line.starts_with('%') {
            continue;
        }
        if entries.len() == count {
            return Err(bad(
                path,
                line_no,
                format!("more entries than the {count} declared"),
            ));
        }
        let mut words = line.split_whitespace();
        let mut index = |what: &str, limit: usize| -> Result<usize, TextError> {
            let word = words
                .next()
                .ok_or_else(|| bad(path, line_no, format!("missing {what}")))?;
            match word.parse::<usize>() {
                Ok(i) if (1..=limit).contains(&i) => Ok(i - 1),
                _ => Err(bad(
                    path,
                    line_no,
                    format!("{what} {word:?} is not within 1..={limit}"),
                )),
            }
        };
        let (r, c) = (index("row", rows)?, index("column", cols)?);
        let value = if pattern {
            1.0
        } else {
            let word = words
                .next()
                .ok_or_else(|| bad(path, line_no, "missing value"))?;
            word.parse::<f32>()
                .map_err(|_| bad(path, line_no, format!("value {word:?} is not a number")))?
        };
        if words.next().is_some() {
            return Err(bad(path, line_no, "more than three fields"));
        }
        entries.push((r, c, value));
    }
    if entries.len() != count {
        return Err(bad(
            path,
            number,
            format!(
                "{} entries, but the size line declared {count}",
                entries.len()
            ),
        ));
    }
    Ok(Coordinates {
        rows,
        cols,
        entries,
    })
}

/// A CSR matrix from (row, column, value) entries; repeated positions are summed.
pub fn csr_from_entries(
    shape: (usize, usize),
    mut entries: Vec<(usize, usize, f32)>,
) -> Result<Values, MatrixError> {
    entries.sort_unstable_by_key(|e| (e.0, e.1));
    let mut indptr = vec![0usize; shape.0 + 1];
    let mut indices = Vec::with_capacity(entries.len());
    let mut data: Vec<f32> = Vec::with_capacity(entries.len());
    let mut last = None;
    for (r, c, v) in entries {
        if r >= shape.0 || c >= shape.1 {
            return Err(MatrixError::Invalid(format!(
                "entry ({r}, {c}) outside {shape:?}"
            )));
        }
        if last == Some((r, c)) {
            *data.last_mut().expect("a previous entry") += v;
            continue;
        }
        last = Some((r, c));
        indptr[r + 1] += 1;
        // Below shape.1, which `Values::sparse` refuses beyond the u32 range.
        indices.push(c as u32);
        data.push(v);
    }
    for i in 0..shape.0 {
        indptr[i + 1] += indptr[i];
    }
    Values::sparse(CompressedStorage::CSR, shape, indptr, indices, data)
}

/// The first of `names` (each also tried with `.gz`) present in `dir`.
fn find_in(dir: &Path, what: &'static str, names: &[&str]) -> Result<PathBuf, TextError> {
    names
        .iter()
        .flat_map(|n| [dir.join(n), dir.join(format!("{n}.gz"))])
        .find(|p| p.is_file())
        .ok_or_else(|| TextError::Missing {
            dir: dir.to_path_buf(),
            what,
            looked_for: names.join(", "),
        })
}

/// Tab-separated lines, each split into fields.
fn read_tsv_lines(path: &Path) -> Result<Vec<Vec<String>>, TextError> {
    let mut out = Vec::new();
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
        if fields[0].is_empty() {
            return Err(bad(path, i as u64 + 1, "empty name"));
        }
        out.push(fields);
    }
    Ok(out)
}

/// Reads a Cell Ranger output directory as cells × genes. Genes are named by symbol, made
/// unique the way AnnData does (`X`, `X-1`, …); their ids and feature types are kept as the
/// gene annotations `gene_ids` and `feature_types`.
pub fn read_10x(dir: &Path) -> Result<ExpressionMatrix, TextError> {
    let matrix_path = find_in(dir, "matrix", &["matrix.mtx"])?;
    let features_path = find_in(dir, "gene list", &["features.tsv", "genes.tsv"])?;
    let barcodes_path = find_in(dir, "barcodes", &["barcodes.tsv"])?;
    let coords = parse_mtx(open(&matrix_path)?, &matrix_path)?;
    let features = read_tsv_lines(&features_path)?;
    let barcodes: Vec<String> = read_tsv_lines(&barcodes_path)?
        .into_iter()
        .map(|mut f| f.swap_remove(0))
        .collect();
    if features.len() != coords.rows {
        return Err(bad(
            &features_path,
            features.len() as u64,
            format!(
                "{} genes, but the matrix has {} rows",
                features.len(),
                coords.rows
            ),
        ));
    }
    if barcodes.len() != coords.cols {
        return Err(bad(
            &barcodes_path,
            barcodes.len() as u64,
            format!(
                "{} barcodes, but the matrix has {} columns",
                barcodes.len(),
                coords.cols
            ),
        ));
    }
    let matrix_error = |source| TextError::Matrix {
        path: matrix_path.clone(),
        source,
    };
    // 10x stores genes × cells; transpose while building.
    let entries = coords
        .entries
        .into_iter()
        .map(|(g, c, v)| (c, g, v))
        .collect();
    let x = csr_from_entries((coords.cols, coords.rows), entries).map_err(matrix_error)?;
    let ids: Vec<String> = features.iter().map(|f| f[0].clone()).collect();
    let mut symbols: Vec<String> = features
        .iter()
        .map(|f| f.get(1).unwrap_or(&f[0]).clone())
        .collect();
    make_unique(&mut symbols);
    let mut m =
        ExpressionMatrix::new(x, barcodes, symbols).map_err(|source| TextError::Matrix {
            path: dir.to_path_buf(),
            source,
        })?;
    m.var.push(("gene_ids".into(), Column::Text(ids)));
    if features.iter().all(|f| f.len() > 2) {
        m.var.push((
            "feature_types".into(),
            Column::Text(features.iter().map(|f| f[2].clone()).collect()),
        ));
    }
    Ok(m)
}

/// Reads a dense table with row and column names: tab-separated unless the name ends in
/// `.csv` (or `.csv.gz`). The header may start with a corner cell or, as R writes it, not.
pub fn read_table(path: &Path, orientation: Orientation) -> Result<ExpressionMatrix, TextError> {
    let name = path.to_string_lossy();
    let delimiter = if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        b','
    } else {
        b'\t'
    };
    parse_table(open(path)?, path, delimiter, orientation)
}

/// [`read_table`] on any reader; `path` only names the source in errors.
pub fn parse_table(
    reader: impl Read,
    path: &Path,
    delimiter: u8,
    orientation: Orientation,
) -> Result<ExpressionMatrix, TextError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        bad(path, line, e.to_string())
    };
    let mut records = reader.records();
    let header = records
        .next()
        .ok_or_else(|| bad(path, 1, "empty file"))?
        .map_err(csv_error)?;
    let mut columns: Vec<String> = header.iter().map(str::to_owned).collect();
    let mut row_names = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    let mut width = None;
    for (i, record) in records.enumerate() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(i as u64 + 2, |p| p.line());
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let w = *width.get_or_insert_with(|| {
            // R writes one header field fewer than each row: no corner cell.
            if record.len() == columns.len() {
                columns.remove(0);
            }
            columns.len()
        });
        if record.len() != w + 1 {
            return Err(bad(
                path,
                line,
                format!(
                    "{} fields, expected {} (a name and {w} values)",
                    record.len(),
                    w + 1
                ),
            ));
        }
        row_names.push(record[0].to_owned());
        for (j, field) in record.iter().skip(1).enumerate() {
            let v = field.trim().parse::<f32>().map_err(|_| {
                bad(
                    path,
                    line,
                    format!(
                        "column {} ({:?}): {field:?} is not a number",
                        j + 2,
                        columns[j]
                    ),
                )
            })?;
            values.push(v);
        }
    }
    let rows = row_names.len();
    let cols = columns.len();
    let table =
        Array2::from_shape_vec((rows, cols), values).map_err(|e| bad(path, 0, e.to_string()))?;
    let (x, cells, genes) = match orientation {
        Orientation::CellsByGenes => (table, row_names, columns),
        Orientation::GenesByCells => (
            table.reversed_axes().as_standard_layout().into_owned(),
            columns,
            row_names,
        ),
    };
    ExpressionMatrix::new(Values::Dense(x), cells, genes).map_err(|source| TextError::Matrix {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes X as a tab-separated table, cells as rows: a `cell` column of names, then one
/// column per gene. The target is replaced only once the whole table is written.
pub fn write_table(m: &ExpressionMatrix, path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let partial = tempfile::Builder::new()
        .prefix(".cellwright-")
        .suffix(".tsv.partial")
        .tempfile_in(dir)?;
    {
        let mut out = std::io::BufWriter::new(partial.as_file());
        write!(out, "cell")?;
        for g in m.genes() {
            write!(out, "\t{g}")?;
        }
        writeln!(out)?;
        let dense = m.x().to_dense();
        for (cell, row) in m.cells().iter().zip(dense.rows()) {
            write!(out, "{cell}")?;
            for v in row {
                write!(out, "\t{v}")?;
            }
            writeln!(out)?;
        }
        out.flush()?;
    }
    partial.persist(path).map_err(|e| e.error)?;
    Ok(())
}
