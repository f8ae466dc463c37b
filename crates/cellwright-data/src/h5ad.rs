//! AnnData `.h5ad` files: read both the current group layout (anndata ≥ 0.7: `obs`/`var` as
//! dataframe groups, `X` as a dataset or a `csr_matrix`/`csc_matrix` group) and the old
//! compound layout (`obs`/`var`/`obsm` as compound datasets, categories in
//! `uns/<column>_categories`, sparse groups marked `h5sparse_format`), as scanpy's
//! `pbmc68k_reduced` still ships; write the current layout, which `anndata.read_h5ad` opens.
//!
//! What is read: `X`, `obs`, `var`, `layers`, `obsm`, and `raw/X` (old: `raw.X`) as the layer
//! `"raw"` when it has `X`'s shape. `uns`, `varm`, `obsp` and `varp` are not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use hdf5::types::{CompoundType, FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Container, Dataset, File, Group, Location};
use ndarray::Array2;
use sprs::CompressedStorage;

use crate::matrix::{Annotations, Column, ExpressionMatrix, MatrixError, Values};

/// Why a `.h5ad` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum H5adError {
    #[error("{path}: {object}: {source}")]
    Hdf5 {
        path: PathBuf,
        object: String,
        #[source]
        source: hdf5::Error,
    },
    #[error("{path}: {object}: {message}")]
    Format {
        path: PathBuf,
        object: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Matrix {
        path: PathBuf,
        #[source]
        source: MatrixError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// libhdf5 did not return within the deadline. It loops forever on some corrupt files
    /// and cannot be interrupted; the thread it runs on is abandoned.
    #[error(
        "{path}: libhdf5 did not finish reading it within {after:?}; the file is probably \
         corrupt. libhdf5 cannot be interrupted, so this process cannot read or write .h5ad \
         files any more"
    )]
    Stuck { path: PathBuf, after: Duration },
    /// An earlier read left libhdf5 stuck (holding its global lock), so no call into it
    /// would return.
    #[error(
        "{path}: cannot use libhdf5: it has been stuck since reading {stuck_on}; restart to \
         read or write .h5ad files again"
    )]
    Unavailable { path: PathBuf, stuck_on: PathBuf },
}

/// The file whose read left libhdf5 stuck, once one has.
static STUCK_ON: Mutex<Option<PathBuf>> = Mutex::new(None);

fn check_available(path: &Path) -> std::result::Result<(), H5adError> {
    let stuck = STUCK_ON.lock().unwrap_or_else(|e| e.into_inner());
    match &*stuck {
        Some(stuck_on) => Err(H5adError::Unavailable {
            path: path.to_path_buf(),
            stuck_on: stuck_on.clone(),
        }),
        None => Ok(()),
    }
}

/// How long [`read`] waits: a minute, plus a second per 20 MB of file (reads run at
/// hundreds of MB/s, so only a read that has stopped making progress comes near it).
pub fn default_deadline(path: &Path) -> Duration {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Duration::from_secs(60) + Duration::from_secs(bytes / 20_000_000)
}

/// Errors without the file name, which [`read`] and [`write`] add.
#[derive(Debug)]
enum Fault {
    Hdf5(String, hdf5::Error),
    Format(String, String),
    Matrix(MatrixError),
}

impl Fault {
    fn at(self, path: &Path) -> H5adError {
        let path = path.to_path_buf();
        match self {
            Fault::Hdf5(object, source) => H5adError::Hdf5 {
                path,
                object,
                source,
            },
            Fault::Format(object, message) => H5adError::Format {
                path,
                object,
                message,
            },
            Fault::Matrix(source) => H5adError::Matrix { path, source },
        }
    }
}

impl From<MatrixError> for Fault {
    fn from(e: MatrixError) -> Self {
        Fault::Matrix(e)
    }
}

type Result<T> = std::result::Result<T, Fault>;

fn h5<T>(object: &str, r: hdf5::Result<T>) -> Result<T> {
    r.map_err(|e| Fault::Hdf5(object.to_owned(), e))
}

fn format<T>(object: &str, message: impl Into<String>) -> Result<T> {
    Err(Fault::Format(object.to_owned(), message.into()))
}

/// Reads an `.h5ad` file, giving up after [`default_deadline`].
pub fn read(path: &Path) -> std::result::Result<ExpressionMatrix, H5adError> {
    read_within(path, default_deadline(path))
}

/// Reads an `.h5ad` file on a thread of its own and waits at most `deadline` for it: a
/// corrupt file can send libhdf5 into an endless loop, and this returns
/// [`H5adError::Stuck`] rather than hanging the caller. Later reads and writes then fail at
/// once with [`H5adError::Unavailable`].
pub fn read_within(
    path: &Path,
    deadline: Duration,
) -> std::result::Result<ExpressionMatrix, H5adError> {
    check_available(path)?;
    let (tx, rx) = mpsc::sync_channel(1);
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("h5ad-read".into())
        .spawn(move || {
            // The receiver is gone only when the caller gave up waiting.
            let _ = tx.send(read_now(&owned));
        })
        .map_err(|source| H5adError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(_) => {
            let mut stuck = STUCK_ON.lock().unwrap_or_else(|e| e.into_inner());
            stuck.get_or_insert_with(|| path.to_path_buf());
            Err(H5adError::Stuck {
                path: path.to_path_buf(),
                after: deadline,
            })
        }
    }
}

fn read_now(path: &Path) -> std::result::Result<ExpressionMatrix, H5adError> {
    // libhdf5 reads anything; say plainly when the file is not HDF5 at all.
    let mut magic = [0u8; 8];
    let is_hdf5 = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|()| magic == *b"\x89HDF\r\n\x1a\n")
        .map_err(|source| H5adError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if !is_hdf5 {
        return Err(Fault::Format(
            "/".into(),
            "not an HDF5 file (no HDF5 signature at its start)".into(),
        )
        .at(path));
    }
    let file = File::open(path).map_err(|e| Fault::Hdf5("/".into(), e).at(path))?;
    read_file(&file).map_err(|f| f.at(path))
}

fn read_file(file: &File) -> Result<ExpressionMatrix> {
    // X's large arrays arrive on threads of their own while libhdf5 reads the annotations.
    let (x, cells, obs, genes, var) = std::thread::scope(|scope| {
        let x = start_matrix(scope, file, "X")?;
        let (n, g) = x.shape();
        let (cells, obs) = read_frame(file, "obs", n)?;
        let (genes, var) = read_frame(file, "var", g)?;
        Ok::<_, Fault>((x.finish()?, cells, obs, genes, var))
    })?;
    let (n, g) = x.shape();
    let mut m = ExpressionMatrix::new(x, cells, genes)?;
    m.obs = obs;
    m.var = var;
    if file.link_exists("layers") {
        let layers = h5("layers", file.group("layers"))?;
        for name in h5("layers", layers.member_names())? {
            let values = read_matrix(&layers, &name)?;
            m.layers.insert(name, values);
        }
    }
    for raw in ["raw/X", "raw.X"] {
        if link_exists(file, raw) {
            let values = read_matrix(file, raw)?;
            if values.shape() == (n, g) {
                m.layers.insert("raw".into(), values);
            }
            break;
        }
    }
    if file.link_exists("obsm") {
        m.obsm = read_obsm(file, n)?;
    }
    m.validate()?;
    Ok(m)
}

fn link_exists(group: &Group, path: &str) -> bool {
    let mut at = String::new();
    for part in path.split('/') {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if !group.link_exists(&at) {
            return false;
        }
    }
    true
}

fn attr_string(loc: &Location, name: &str) -> Option<String> {
    let attr = loc.attr(name).ok()?;
    match attr.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::VarLenUnicode => attr
            .read_scalar::<VarLenUnicode>()
            .ok()
            .map(|s| s.to_string()),
        TypeDescriptor::VarLenAscii => attr
            .read_scalar::<VarLenAscii>()
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

fn encoding(loc: &Location) -> Option<String> {
    attr_string(loc, "encoding-type")
        .or_else(|| attr_string(loc, "h5sparse_format").map(|f| format!("{f}_matrix")))
}

/// A matrix stored as a dataset (dense) or a sparse group.
fn read_matrix(parent: &Group, name: &str) -> Result<Values> {
    std::thread::scope(|scope| start_matrix(scope, parent, name)?.finish())
}

/// A matrix whose shape is known and whose large arrays may still be arriving.
enum Pending<'scope> {
    Dense {
        object: String,
        shape: (usize, usize),
        values: Arriving<'scope, f32>,
    },
    Sparse {
        storage: CompressedStorage,
        shape: (usize, usize),
        indptr: Vec<usize>,
        indices: Arriving<'scope, u32>,
        data: Arriving<'scope, f32>,
    },
}

/// An array read already, or being read straight from the file on a thread of its own.
enum Arriving<'scope, T> {
    Read(Vec<T>),
    Reading(std::thread::ScopedJoinHandle<'scope, Result<Vec<T>>>),
}

impl<T> Arriving<'_, T> {
    fn wait(self) -> Result<Vec<T>> {
        match self {
            Arriving::Read(v) => Ok(v),
            Arriving::Reading(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        }
    }
}

impl Pending<'_> {
    fn shape(&self) -> (usize, usize) {
        match self {
            Pending::Dense { shape, .. } | Pending::Sparse { shape, .. } => *shape,
        }
    }

    fn finish(self) -> Result<Values> {
        match self {
            Pending::Dense {
                object,
                shape,
                values,
            } => Array2::from_shape_vec(shape, values.wait()?)
                .map(Values::Dense)
                .or_else(|e| format(&object, e.to_string())),
            Pending::Sparse {
                storage,
                shape,
                indptr,
                indices,
                data,
            } => {
                let (indices, data) = (indices.wait()?, data.wait()?);
                Ok(Values::sparse(storage, shape, indptr, indices, data)?)
            }
        }
    }
}

/// Starts reading a matrix: its metadata through libhdf5 now, and its large arrays, where
/// they lie contiguous and unfiltered in the file, on threads of `scope`.
fn start_matrix<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    parent: &Group,
    name: &str,
) -> Result<Pending<'scope>> {
    let object = name;
    if let Ok(ds) = parent.dataset(name) {
        check_size(&ds, object)?;
        let &[rows, cols] = &ds.shape()[..] else {
            return format(
                object,
                format!(
                    "a matrix must have 2 dimensions, found {}",
                    ds.shape().len()
                ),
            );
        };
        return Ok(Pending::Dense {
            object: object.to_owned(),
            shape: (rows, cols),
            values: start_values(scope, &ds, object)?,
        });
    }
    let group = h5(object, parent.group(name))?;
    let storage = match encoding(&group).as_deref() {
        Some("csr_matrix") => CompressedStorage::CSR,
        Some("csc_matrix") => CompressedStorage::CSC,
        other => return format(object, format!("unsupported matrix encoding {other:?}")),
    };
    let shape_attr = group
        .attr("shape")
        .or_else(|_| group.attr("h5sparse_shape"));
    let shape = h5(object, shape_attr.and_then(|a| a.read_raw::<i64>()))?;
    let [rows, cols] = shape[..] else {
        return format(
            object,
            format!("shape has {} entries, expected 2", shape.len()),
        );
    };
    let (rows, cols) = (to_usize(object, rows)?, to_usize(object, cols)?);

    let data = start_values(scope, &open_dataset(&group, "data", object)?, object)?;
    let ds = open_dataset(&group, "indices", object)?;
    let at = format!("{object}/indices");
    let indices = match direct::extent(&ds, &at)? {
        // int32 read as u32: a negative value shows as one of 2^31 or more.
        Some((extent, TypeDescriptor::Integer(IntSize::U4))) => {
            Arriving::Reading(scope.spawn(move || {
                let v: Vec<u32> = extent.read()?;
                match v.iter().find(|&&i| i > i32::MAX as u32) {
                    Some(&i) => format(&at, format!("negative value {}", i as i32)),
                    None => Ok(v),
                }
            }))
        }
        Some((extent, TypeDescriptor::Unsigned(IntSize::U4))) => {
            Arriving::Reading(scope.spawn(move || extent.read()))
        }
        _ => Arriving::Read(read_indices(&group, object)?),
    };
    Ok(Pending::Sparse {
        storage,
        shape: (rows, cols),
        indptr: read_offsets(&group, object)?,
        indices,
        data,
    })
}

/// A dataset's f32 values: read straight from the file on a thread of `scope` when they lie
/// there as little-endian f32, through libhdf5 (converting) otherwise.
fn start_values<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    ds: &Dataset,
    object: &str,
) -> Result<Arriving<'scope, f32>> {
    Ok(match direct::extent(ds, object)? {
        Some((extent, TypeDescriptor::Float(FloatSize::U4))) => {
            Arriving::Reading(scope.spawn(move || extent.read()))
        }
        _ => Arriving::Read(h5(object, ds.read_raw::<f32>())?),
    })
}

/// Reading a dataset's values straight from the file, without libhdf5 (which serialises
/// every call behind one lock) and into buffers backed by huge pages.
mod direct {
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    use hdf5::Dataset;
    use hdf5::types::TypeDescriptor;

    use super::{Result, format, h5};

    /// Where `len` values of a dataset lie in its file.
    pub(super) struct Extent {
        path: PathBuf,
        object: String,
        offset: u64,
        len: usize,
    }

    /// The extent of `ds` and the type stored there, when its values can be read as they lie:
    /// stored contiguous, without filters, little-endian on a little-endian machine, in a file
    /// without a user block (so offsets count from the file's start), and wholly inside the
    /// file. The caller reads them only if the type is the one it wants.
    pub(super) fn extent(ds: &Dataset, object: &str) -> Result<Option<(Extent, TypeDescriptor)>> {
        let dtype = h5(object, ds.dtype())?;
        let Ok(stored) = dtype.to_descriptor() else {
            return Ok(None);
        };
        let plain = cfg!(target_endian = "little")
            && dtype.byte_order() == hdf5::datatype::ByteOrder::LittleEndian
            && ds.layout() == hdf5::dataset::Layout::Contiguous
            && ds.filters().is_empty();
        let file = h5(object, ds.file())?;
        let (Some(offset), true, 0) = (ds.offset(), plain, file.userblock()) else {
            return Ok(None);
        };
        let len = ds.size();
        let bytes = (len as u64).saturating_mul(dtype.size() as u64);
        if offset.saturating_add(bytes) > file.size() {
            return format(
                object,
                format!("its {bytes} bytes at offset {offset} run past the end of the file"),
            );
        }
        let extent = Extent {
            path: PathBuf::from(file.filename()),
            object: object.to_owned(),
            offset,
            len,
        };
        Ok(Some((extent, stored)))
    }

    impl Extent {
        pub(super) fn read<T: bytemuck::Pod>(self) -> Result<Vec<T>> {
            let mut values = buffer::<T>(self.len);
            std::fs::File::open(&self.path)
                .and_then(|f| f.read_exact_at(bytemuck::cast_slice_mut(&mut values), self.offset))
                .or_else(|e| format(&self.object, format!("reading its values: {e}")))?;
            Ok(values)
        }
    }

    /// A zeroed buffer of `len` values. A large one is first advised to transparent huge
    /// pages, as numpy does for its arrays: filling 56 MB then takes dozens of page faults
    /// rather than 14,000.
    #[allow(unsafe_code)]
    fn buffer<T: bytemuck::Pod>(len: usize) -> Vec<T> {
        let mut values = vec![T::zeroed(); len];
        #[cfg(target_os = "linux")]
        {
            const HUGE: usize = 2 << 20;
            let start = values.as_mut_ptr() as usize;
            let end = start + std::mem::size_of_val(values.as_slice());
            let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
            if to > from {
                // SAFETY: [from, to) lies inside `values`' allocation, which we own; the advice
                // changes only how the kernel backs those pages, never their contents.
                unsafe {
                    libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
                }
            }
        }
        values
    }
}

/// Opens a dataset and checks that its declared size is plausible for the file it is in,
/// before anything is allocated for it: a corrupt dataspace may claim exabytes.
fn open_dataset(parent: &Group, name: &str, object: &str) -> Result<Dataset> {
    let ds = h5(object, parent.dataset(name))?;
    check_size(&ds, object)?;
    Ok(ds)
}

fn check_size(ds: &Dataset, object: &str) -> Result<()> {
    let element = h5(object, ds.dtype())?.size() as u64;
    let file = h5(object, ds.file())?.size();
    let declared = (ds.size() as u64).saturating_mul(element);
    // Compressed chunks can hold far more than their bytes on disk, but not 1000× more
    // of anything an AnnData file stores.
    if declared > file.saturating_mul(1000).saturating_add(1 << 20) {
        return format(
            object,
            format!("declares {declared} bytes of data in a file of {file} bytes"),
        );
    }
    Ok(())
}

fn to_usize(object: &str, v: i64) -> Result<usize> {
    usize::try_from(v).or_else(|_| format(object, format!("negative size or index {v}")))
}

/// A sparse group's integer dataset, read at its stored width: libhdf5 converts nothing
/// for int32 (what scipy writes), and the sign checks below are single vectorised passes.
enum Ints {
    Signed(Vec<i32>),
    Unsigned(Vec<u32>),
    Wide(Vec<i64>),
}

fn read_ints(group: &Group, name: &str, object: &str) -> Result<(Ints, String)> {
    let ds = open_dataset(group, name, object)?;
    let at = format!("{object}/{name}");
    let ints = match h5(&at, h5(&at, ds.dtype())?.to_descriptor())? {
        TypeDescriptor::Integer(IntSize::U8) | TypeDescriptor::Unsigned(IntSize::U8) => {
            Ints::Wide(h5(&at, ds.read_raw::<i64>())?)
        }
        TypeDescriptor::Unsigned(_) => Ints::Unsigned(h5(&at, ds.read_raw::<u32>())?),
        _ => Ints::Signed(h5(&at, ds.read_raw::<i32>())?),
    };
    Ok((ints, at))
}

fn negative<T: Copy + Into<i64>>(values: &[T], at: &str) -> Result<()> {
    match values.iter().find(|&&v| v.into() < 0) {
        Some(&v) => format(at, format!("negative value {}", v.into())),
        None => Ok(()),
    }
}

/// `indices`: positions along the inner dimension, as `u32`.
fn read_indices(group: &Group, object: &str) -> Result<Vec<u32>> {
    match read_ints(group, "indices", object)? {
        (Ints::Unsigned(v), _) => Ok(v),
        (Ints::Signed(v), at) => {
            negative(&v, &at)?;
            // Same size and alignment: collected in place, no second buffer.
            Ok(v.into_iter().map(|i| i as u32).collect())
        }
        (Ints::Wide(v), at) => {
            negative(&v, &at)?;
            if let Some(&i) = v.iter().find(|&&i| i > i64::from(u32::MAX)) {
                return format(&at, format!("index {i} exceeds the u32 range"));
            }
            Ok(v.into_iter().map(|i| i as u32).collect())
        }
    }
}

/// `indptr`: offsets into `indices` and `data`, as `usize`.
fn read_offsets(group: &Group, object: &str) -> Result<Vec<usize>> {
    match read_ints(group, "indptr", object)? {
        (Ints::Unsigned(v), _) => Ok(v.into_iter().map(|i| i as usize).collect()),
        (Ints::Signed(v), at) => {
            negative(&v, &at)?;
            Ok(v.into_iter().map(|i| i as usize).collect())
        }
        (Ints::Wide(v), at) => {
            negative(&v, &at)?;
            Ok(v.into_iter().map(|i| i as usize).collect())
        }
    }
}

/// A dataframe (`obs` or `var`): its index and columns.
fn read_frame(file: &File, name: &str, len: usize) -> Result<(Vec<String>, Annotations)> {
    if let Ok(ds) = file.dataset(name) {
        check_size(&ds, name)?;
        return read_compound_frame(file, &ds, name, len);
    }
    let group = h5(name, file.group(name))?;
    let index_name = attr_string(&group, "_index").unwrap_or_else(|| "_index".into());
    let index = read_strings(
        &open_dataset(&group, &index_name, name)?,
        &format!("{name}/{index_name}"),
    )?;
    check_len(name, "index", len, index.len())?;
    let order = column_order(&group, name)?;
    let mut columns = Vec::with_capacity(order.len());
    for col in order {
        let at = format!("{name}/{col}");
        let column = read_column(&group, &col, &at)?;
        check_len(&at, "column", len, column.len())?;
        columns.push((col, column));
    }
    Ok((index, columns))
}

fn check_len(object: &str, what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        format(
            object,
            format!("{what} has {found} entries, expected {expected}"),
        )
    }
}

fn column_order(group: &Group, object: &str) -> Result<Vec<String>> {
    let Ok(attr) = group.attr("column-order") else {
        return Ok(Vec::new());
    };
    if attr.size() == 0 {
        return Ok(Vec::new());
    }
    let descriptor = h5(object, h5(object, attr.dtype())?.to_descriptor())?;
    match variable_strings(&attr, &descriptor, object)? {
        Some(names) => Ok(names),
        None => format(
            object,
            format!("column-order of type {descriptor} is not a list of names"),
        ),
    }
}

fn read_column(group: &Group, name: &str, object: &str) -> Result<Column> {
    if let Ok(ds) = group.dataset(name) {
        check_size(&ds, object)?;
        return read_array_column(&ds, object);
    }
    let sub = h5(object, group.group(name))?;
    match encoding(&sub).as_deref() {
        Some("categorical") => {
            let categories = read_strings(&open_dataset(&sub, "categories", object)?, object)?;
            let codes = h5(
                object,
                open_dataset(&sub, "codes", object)?.read_raw::<i32>(),
            )?;
            let ordered = sub
                .attr("ordered")
                .and_then(|a| a.read_scalar::<bool>())
                .unwrap_or(false);
            Ok(Column::Categorical {
                categories,
                codes,
                ordered,
            })
        }
        // Missing values become NaN: our numeric columns have no mask.
        Some("nullable-integer" | "nullable-boolean") => {
            let mask = h5(
                object,
                open_dataset(&sub, "mask", object)?.read_raw::<bool>(),
            )?;
            let values = h5(
                object,
                open_dataset(&sub, "values", object)?.read_raw::<f64>(),
            )?;
            check_len(object, "mask", values.len(), mask.len())?;
            Ok(Column::Float(
                values
                    .into_iter()
                    .zip(mask)
                    .map(|(v, missing)| if missing { f64::NAN } else { v })
                    .collect(),
            ))
        }
        other => format(object, format!("unsupported column encoding {other:?}")),
    }
}

fn read_array_column(ds: &Dataset, object: &str) -> Result<Column> {
    if ds.ndim() != 1 {
        return format(
            object,
            format!("a column must have 1 dimension, found {}", ds.ndim()),
        );
    }
    let descriptor = h5(object, h5(object, ds.dtype())?.to_descriptor())?;
    Ok(match descriptor {
        TypeDescriptor::Float(_) => Column::Float(h5(object, ds.read_raw::<f64>())?),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            Column::Int(h5(object, ds.read_raw::<i64>())?)
        }
        TypeDescriptor::Boolean => Column::Bool(h5(object, ds.read_raw::<bool>())?),
        TypeDescriptor::Enum(e) if e.members.len() == 2 => Column::Bool(
            h5(object, ds.read_raw::<i8>())?
                .into_iter()
                .map(|v| v != 0)
                .collect(),
        ),
        _ => Column::Text(read_strings(ds, object)?),
    })
}

/// A one-dimensional array of strings, fixed-length or variable-length, ASCII or UTF-8.
fn read_strings(ds: &Dataset, object: &str) -> Result<Vec<String>> {
    let descriptor = h5(object, h5(object, ds.dtype())?.to_descriptor())?;
    if let Some(strings) = variable_strings(ds, &descriptor, object)? {
        return Ok(strings);
    }
    match descriptor {
        TypeDescriptor::FixedAscii(width) | TypeDescriptor::FixedUnicode(width) => {
            let (_, bytes) = raw::read_bytes(ds).map_err(|e| Fault::Hdf5(object.to_owned(), e))?;
            Ok(bytes.chunks(width.max(1)).map(fixed_string).collect())
        }
        other => format(object, format!("expected strings, found {other}")),
    }
}

/// The values of a dataset or attribute of variable-length strings; `None` for other types.
fn variable_strings(
    c: &Container,
    descriptor: &TypeDescriptor,
    object: &str,
) -> Result<Option<Vec<String>>> {
    Ok(match descriptor {
        TypeDescriptor::VarLenUnicode => Some(
            h5(object, c.read_raw::<VarLenUnicode>())?
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        TypeDescriptor::VarLenAscii => Some(
            h5(object, c.read_raw::<VarLenAscii>())?
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        _ => None,
    })
}

fn fixed_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A compound table of the old layout: its type, its records' bytes, and how many rows it
/// has, which must be `len`; every field lies within its record.
fn read_compound(ds: &Dataset, object: &str, len: usize) -> Result<(CompoundType, Vec<u8>)> {
    let (descriptor, bytes) = raw::read_bytes(ds).map_err(|e| Fault::Hdf5(object.to_owned(), e))?;
    let TypeDescriptor::Compound(compound) = descriptor else {
        return format(object, "expected a compound dataset (old AnnData layout)");
    };
    let rows = bytes.len().checked_div(compound.size).unwrap_or(0);
    check_len(object, "table", len, rows)?;
    if let Some(f) = compound
        .fields
        .iter()
        .find(|f| f.offset + f.ty.size() > compound.size)
    {
        return format(object, format!("field {} lies outside its record", f.name));
    }
    Ok((compound, bytes))
}

/// The old layout: a compound dataset whose `index` field names the rows; categorical
/// columns keep codes in the compound and categories in `uns/<column>_categories`.
fn read_compound_frame(
    file: &File,
    ds: &Dataset,
    object: &str,
    len: usize,
) -> Result<(Vec<String>, Annotations)> {
    let (compound, bytes) = read_compound(ds, object, len)?;
    let records: Vec<&[u8]> = bytes.chunks(compound.size.max(1)).collect();
    let mut index = None;
    let mut columns = Vec::new();
    for field in &compound.fields {
        let at = format!("{object}.{}", field.name);
        let cells = records.iter().map(|r| &r[field.offset..]);
        let column = match &field.ty {
            TypeDescriptor::FixedAscii(w) | TypeDescriptor::FixedUnicode(w) => {
                Column::Text(cells.map(|c| fixed_string(&c[..*w])).collect())
            }
            TypeDescriptor::Integer(size) | TypeDescriptor::Unsigned(size) => {
                let signed = matches!(field.ty, TypeDescriptor::Integer(_));
                Column::Int(
                    cells
                        .map(|c| le_int(&c[..*size as usize], signed))
                        .collect(),
                )
            }
            TypeDescriptor::Float(size) => {
                Column::Float(cells.map(|c| le_float(c, *size)).collect())
            }
            TypeDescriptor::Boolean | TypeDescriptor::Enum(_) => {
                Column::Bool(cells.map(|c| c[0] != 0).collect())
            }
            other => return format(&at, format!("unsupported field type {other}")),
        };
        if field.name == "index" {
            match column {
                Column::Text(names) => index = Some(names),
                _ => return format(&at, "the index is not text"),
            }
            continue;
        }
        let categories_at = format!("uns/{}_categories", field.name);
        let column = match column {
            Column::Int(codes) if link_exists(file, &categories_at) => {
                let categories = read_strings(
                    &open_dataset(file, &categories_at, &categories_at)?,
                    &categories_at,
                )?;
                let codes = codes
                    .into_iter()
                    .map(|c| i32::try_from(c).unwrap_or(-1))
                    .collect();
                Column::Categorical {
                    categories,
                    codes,
                    ordered: false,
                }
            }
            other => other,
        };
        columns.push((field.name.clone(), column));
    }
    let Some(index) = index else {
        return format(object, "the table has no index field");
    };
    Ok((index, columns))
}

fn le_int(bytes: &[u8], signed: bool) -> i64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    if signed && bytes.last().is_some_and(|b| b & 0x80 != 0) {
        buf[bytes.len()..].fill(0xff);
    }
    i64::from_le_bytes(buf)
}

fn le_float(bytes: &[u8], size: FloatSize) -> f64 {
    match size {
        FloatSize::U4 => f64::from(f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))),
        FloatSize::U8 => f64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
    }
}

fn read_obsm(file: &File, cells: usize) -> Result<BTreeMap<String, Array2<f32>>> {
    let mut out = BTreeMap::new();
    if let Ok(ds) = file.dataset("obsm") {
        check_size(&ds, "obsm")?;
        let (compound, bytes) = read_compound(&ds, "obsm", cells)?;
        let rows = cells;
        for field in &compound.fields {
            let TypeDescriptor::FixedArray(inner, width) = &field.ty else {
                continue;
            };
            let TypeDescriptor::Float(size) = **inner else {
                continue;
            };
            let step = size as usize;
            let mut m = Array2::<f32>::zeros((rows, *width));
            for (i, record) in bytes.chunks(compound.size).enumerate() {
                for k in 0..*width {
                    let at = field.offset + k * step;
                    m[[i, k]] = le_float(&record[at..at + step], size) as f32;
                }
            }
            out.insert(field.name.clone(), m);
        }
        return Ok(out);
    }
    let group = h5("obsm", file.group("obsm"))?;
    for name in h5("obsm", group.member_names())? {
        let values = read_matrix(&group, &name)?;
        out.insert(name, values.to_dense());
    }
    Ok(out)
}

/// Writes `m` in the current AnnData layout (encoding version 0.1.0), replacing `path`
/// only once the whole file is written.
pub fn write(m: &ExpressionMatrix, path: &Path) -> std::result::Result<(), H5adError> {
    check_available(path)?;
    m.validate().map_err(|source| H5adError::Matrix {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |source| H5adError::Io {
        path: path.to_path_buf(),
        source,
    };
    let partial = tempfile::Builder::new()
        .prefix(".cellwright-")
        .suffix(".h5ad.partial")
        .tempfile_in(dir)
        .map_err(io)?;
    {
        let file = File::create(partial.path()).map_err(|e| Fault::Hdf5("/".into(), e).at(path))?;
        write_file(m, &file).map_err(|f| f.at(path))?;
        file.close()
            .map_err(|e| Fault::Hdf5("/".into(), e).at(path))?;
    }
    partial.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

fn write_file(m: &ExpressionMatrix, file: &File) -> Result<()> {
    set_encoding(file, "/", "anndata", "0.1.0")?;
    write_matrix(file, "X", m.x())?;
    write_frame(file, "obs", m.cells(), &m.obs)?;
    write_frame(file, "var", m.genes(), &m.var)?;
    let layers = h5("layers", file.create_group("layers"))?;
    set_encoding(&layers, "layers", "dict", "0.1.0")?;
    for (name, values) in &m.layers {
        write_matrix(&layers, name, values)?;
    }
    let obsm = h5("obsm", file.create_group("obsm"))?;
    set_encoding(&obsm, "obsm", "dict", "0.1.0")?;
    for (name, values) in &m.obsm {
        let at = format!("obsm/{name}");
        let ds = h5(
            &at,
            obsm.new_dataset_builder()
                .with_data(values)
                .create(name.as_str()),
        )?;
        set_encoding(&ds, &at, "array", "0.2.0")?;
    }
    for name in ["uns", "varm", "obsp", "varp"] {
        let g = h5(name, file.create_group(name))?;
        set_encoding(&g, name, "dict", "0.1.0")?;
    }
    Ok(())
}

fn set_encoding(loc: &Location, object: &str, kind: &str, version: &str) -> Result<()> {
    write_attr_string(loc, object, "encoding-type", kind)?;
    write_attr_string(loc, object, "encoding-version", version)
}

fn unicode(object: &str, s: &str) -> Result<VarLenUnicode> {
    VarLenUnicode::from_str(s).or_else(|e| format(object, format!("{s:?} cannot be stored: {e}")))
}

fn write_attr_string(loc: &Location, object: &str, name: &str, value: &str) -> Result<()> {
    let value = unicode(object, value)?;
    h5(
        object,
        loc.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&value)),
    )
}

fn write_strings(group: &Group, name: &str, object: &str, values: &[String]) -> Result<Dataset> {
    let values: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| unicode(object, s))
        .collect::<Result<_>>()?;
    let ds = h5(
        object,
        group.new_dataset_builder().with_data(&values).create(name),
    )?;
    set_encoding(&ds, object, "string-array", "0.2.0")?;
    Ok(ds)
}

fn write_matrix(parent: &Group, name: &str, values: &Values) -> Result<()> {
    let object = name;
    match values {
        Values::Dense(a) => {
            let ds = h5(
                object,
                parent.new_dataset_builder().with_data(a).create(name),
            )?;
            set_encoding(&ds, object, "array", "0.2.0")
        }
        Values::Sparse(s) => {
            let group = h5(object, parent.create_group(name))?;
            let kind = if s.is_csr() {
                "csr_matrix"
            } else {
                "csc_matrix"
            };
            set_encoding(&group, object, kind, "0.1.0")?;
            let shape = [s.rows() as i64, s.cols() as i64];
            h5(
                object,
                group
                    .new_attr::<i64>()
                    .shape(2)
                    .create("shape")
                    .and_then(|a| a.write_raw(&shape[..])),
            )?;
            h5(
                object,
                group
                    .new_dataset_builder()
                    .with_data(s.data())
                    .create("data"),
            )?;
            let narrow =
                s.nnz() <= i32::MAX as usize && s.rows().max(s.cols()) <= i32::MAX as usize;
            // int32 when it fits, as scipy writes them; int64 beyond.
            let indices = s.indices().iter().map(|&i| i as usize);
            let indptr = s.proper_indptr();
            if narrow {
                write_ints::<i32>(&group, object, "indices", indices)?;
                write_ints::<i32>(&group, object, "indptr", indptr.iter().copied())
            } else {
                write_ints::<i64>(&group, object, "indices", indices)?;
                write_ints::<i64>(&group, object, "indptr", indptr.iter().copied())
            }
        }
    }
}

/// Writes a sparse group's integer dataset `name` as integers of type `T`.
fn write_ints<T: hdf5::H5Type + TryFrom<usize>>(
    group: &Group,
    object: &str,
    name: &str,
    values: impl Iterator<Item = usize>,
) -> Result<()> {
    let values: Vec<T> = values
        .map(|i| {
            T::try_from(i).or_else(|_| format(object, format!("{name} value {i} does not fit")))
        })
        .collect::<Result<_>>()?;
    h5(
        object,
        group.new_dataset_builder().with_data(&values).create(name),
    )?;
    Ok(())
}

fn write_frame(file: &File, name: &str, index: &[String], columns: &Annotations) -> Result<()> {
    let group = h5(name, file.create_group(name))?;
    set_encoding(&group, name, "dataframe", "0.2.0")?;
    write_attr_string(&group, name, "_index", "_index")?;
    let order: Vec<VarLenUnicode> = columns
        .iter()
        .map(|(c, _)| unicode(name, c))
        .collect::<Result<_>>()?;
    h5(
        name,
        group
            .new_attr::<VarLenUnicode>()
            .shape(order.len())
            .create("column-order")
            .and_then(|a| a.write_raw(&order[..])),
    )?;
    write_strings(&group, "_index", &format!("{name}/_index"), index)?;
    for (col, column) in columns {
        let at = format!("{name}/{col}");
        if col == "_index" {
            return format(&at, "a column may not be called _index");
        }
        let plain = |ds: hdf5::Result<Dataset>| -> Result<()> {
            let ds = h5(&at, ds)?;
            set_encoding(&ds, &at, "array", "0.2.0")
        };
        match column {
            Column::Float(v) => plain(
                group
                    .new_dataset_builder()
                    .with_data(v)
                    .create(col.as_str()),
            )?,
            Column::Int(v) => plain(
                group
                    .new_dataset_builder()
                    .with_data(v)
                    .create(col.as_str()),
            )?,
            Column::Bool(v) => plain(
                group
                    .new_dataset_builder()
                    .with_data(v)
                    .create(col.as_str()),
            )?,
            Column::Text(v) => {
                write_strings(&group, col, &at, v)?;
            }
            Column::Categorical {
                categories,
                codes,
                ordered,
            } => {
                let cat = h5(&at, group.create_group(col))?;
                set_encoding(&cat, &at, "categorical", "0.2.0")?;
                h5(
                    &at,
                    cat.new_attr::<bool>()
                        .create("ordered")
                        .and_then(|a| a.write_scalar(ordered)),
                )?;
                write_strings(&cat, "categories", &at, categories)?;
                let codes_ds = h5(
                    &at,
                    cat.new_dataset_builder().with_data(codes).create("codes"),
                )?;
                set_encoding(&codes_ds, &at, "array", "0.2.0")?;
            }
        }
    }
    Ok(())
}

/// Reading a dataset's bytes exactly as stored, for fixed-size types the typed API cannot
/// name at compile time: compound tables whose fields are known only from the file, and
/// fixed-length strings of any width.
mod raw {
    use hdf5::Dataset;
    use hdf5::types::TypeDescriptor;

    pub fn read_bytes(ds: &Dataset) -> hdf5::Result<(TypeDescriptor, Vec<u8>)> {
        let dtype = ds.dtype()?;
        let descriptor = dtype.to_descriptor()?;
        if has_variable_length(&descriptor) {
            return Err(format!(
                "{descriptor} has variable-length parts; only fixed-size types are read as bytes"
            )
            .into());
        }
        let len = ds
            .size()
            .checked_mul(dtype.size())
            .ok_or("dataset too large")?;
        let mut buf = vec![0u8; len];
        // SAFETY: the memory type is the dataset's own fixed-size type, so HDF5 writes exactly
        // size × element-size bytes, the length of `buf`, and converts nothing; the
        // hdf5 crate's lock serialises calls into the library.
        #[allow(unsafe_code)] // libhdf5 has no safe entry point for a type known only at run time
        let status = hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5d::H5Dread(
                ds.id(),
                dtype.id(),
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5p::H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            )
        });
        if status < 0 {
            return Err(format!("reading {} bytes failed", buf.len()).into());
        }
        Ok((descriptor, buf))
    }

    fn has_variable_length(t: &TypeDescriptor) -> bool {
        match t {
            TypeDescriptor::VarLenArray(_)
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::VarLenUnicode
            | TypeDescriptor::Reference(_) => true,
            TypeDescriptor::FixedArray(inner, _) => has_variable_length(inner),
            TypeDescriptor::Compound(c) => c.fields.iter().any(|f| has_variable_length(&f.ty)),
            _ => false,
        }
    }
}
