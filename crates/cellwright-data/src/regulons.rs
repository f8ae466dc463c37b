//! Transcription-factor regulons: which genes a regulator controls the expression of, and
//! which regulators control a gene. Edges are unsigned (no activation or repression) and keep
//! their Pathway Commons interaction type.
//!
//! The catalogue's `pathway-commons-regulons` are the Pathway Commons edges that
//! `priori_regulon-enrichment` ships as a pickled pandas DataFrame (columns `UpGene`, `Type`,
//! `DownGene`); [`Regulons::read`] takes the table apart with [`crate::pickle`], running no
//! Python.
//!
//! ```
//! use cellwright_data::regulons::{Interaction, Regulons};
//!
//! let edge = |r: &str, t: &str| Interaction::new(r, t, "controls-expression-of");
//! let regulons = Regulons::from_edges([
//!     edge("TP53", "MDM2"),
//!     edge("TP53", "CDKN1A"),
//!     edge("E2F1", "CDKN1A"),
//! ]);
//! let tp53 = regulons.targets_of("tp53")?;
//! assert_eq!(tp53.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), ["CDKN1A", "MDM2"]);
//! assert_eq!(regulons.regulators_of("CDKN1A")?.len(), 2);
//! assert!(regulons.targets_of("TP35").is_err());
//! # Ok::<(), cellwright_data::regulons::RegulonError>(())
//! ```

use std::path::Path;

use crate::pickle::{NodeId, Pickle, PickleError, Value};

/// One edge: `regulator` controls `target` in the way `kind` names.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct Interaction {
    pub regulator: String,
    pub target: String,
    /// The Pathway Commons interaction type (`controls-expression-of`).
    pub kind: String,
}

impl Interaction {
    pub fn new(
        regulator: impl Into<String>,
        target: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            regulator: regulator.into(),
            target: target.into(),
            kind: kind.into(),
        }
    }
}

/// Why regulons could not be read or a question answered.
#[derive(Debug, thiserror::Error)]
pub enum RegulonError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a pickle this reader takes: {source}")]
    Pickle {
        path: String,
        #[source]
        source: PickleError,
    },
    #[error("{path}: not the expected pandas table: {message}")]
    Layout { path: String, message: String },
    #[error("no regulator `{query}` in the regulons{}", cellwright_core::did_you_mean(.suggestions))]
    UnknownRegulator {
        query: String,
        suggestions: Vec<String>,
    },
    #[error("no gene `{query}` with regulators in the regulons{}", cellwright_core::did_you_mean(.suggestions))]
    UnknownTarget {
        query: String,
        suggestions: Vec<String>,
    },
}

/// The edges of one symbol (upper-cased key): `start..end` in a sorted list.
#[derive(Debug, Clone)]
struct Span {
    key: String,
    start: usize,
    end: usize,
}

/// Regulator → target edges, looked up by symbol either way, ignoring case.
#[derive(Debug, Clone)]
pub struct Regulons {
    /// By regulator, then target, then kind.
    edges: Vec<Interaction>,
    /// Indices into `edges`, by target, then regulator.
    by_target: Vec<usize>,
    regulators: Vec<Span>,
    targets: Vec<Span>,
}

fn spans<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for (i, key) in keys.enumerate() {
        match out.last_mut() {
            Some(span) if span.key == key => span.end = i + 1,
            _ => out.push(Span {
                key: key.to_owned(),
                start: i,
                end: i + 1,
            }),
        }
    }
    out
}

fn find<'a>(spans: &'a [Span], query: &str) -> Option<&'a Span> {
    let key = query.trim().to_uppercase();
    spans
        .binary_search_by(|s| s.key.as_str().cmp(&key))
        .ok()
        .and_then(|i| spans.get(i))
}

impl Regulons {
    /// The regulons of these edges. Symbols match ignoring case: of edges that differ only
    /// in the case of their symbols, the first given is kept.
    pub fn from_edges(edges: impl IntoIterator<Item = Interaction>) -> Self {
        let mut keyed: Vec<((String, String), Interaction)> = edges
            .into_iter()
            .map(|e| ((e.regulator.to_uppercase(), e.target.to_uppercase()), e))
            .collect();
        // Stable: among equal edges, the first given comes first and stays.
        keyed.sort_by(|a, b| (&a.0, &a.1.kind).cmp(&(&b.0, &b.1.kind)));
        keyed.dedup_by(|later, kept| later.0 == kept.0 && later.1.kind == kept.1.kind);
        let (keys, edges): (Vec<(String, String)>, Vec<Interaction>) = keyed.into_iter().unzip();
        let mut by_target: Vec<usize> = (0..edges.len()).collect();
        // Already ordered by regulator, and the sort is stable.
        by_target.sort_by(|&a, &b| keys[a].1.cmp(&keys[b].1));
        let regulators = spans(keys.iter().map(|(r, _)| r.as_str()));
        let targets = spans(by_target.iter().map(|&i| keys[i].1.as_str()));
        Self {
            edges,
            by_target,
            regulators,
            targets,
        }
    }

    /// Reads the pickled pandas DataFrame of `priori_regulon-enrichment`
    /// (`primary_intx_regulon.pkl`): columns `UpGene`, `Type` and `DownGene`, wherever its
    /// blocks put them.
    pub fn read(path: &Path) -> Result<Self, RegulonError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RegulonError::Io {
            path: shown.clone(),
            source,
        })?;
        let pickle = Pickle::parse(&bytes).map_err(|source| RegulonError::Pickle {
            path: shown.clone(),
            source,
        })?;
        let layout = |message: String| RegulonError::Layout {
            path: shown.clone(),
            message,
        };
        let columns = frame_columns(&pickle).map_err(layout)?;
        let column = |name: &str| {
            columns
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, values)| values)
                .ok_or_else(|| layout(format!("no `{name}` column")))
        };
        let (up, kind, down) = (column("UpGene")?, column("Type")?, column("DownGene")?);
        Ok(Self::from_edges(
            up.iter()
                .zip(kind)
                .zip(down)
                .map(|((r, k), t)| Interaction::new(*r, *t, *k)),
        ))
    }

    /// The edges from regulator `tf`, by target (ignoring case).
    pub fn targets_of(&self, tf: &str) -> Result<&[Interaction], RegulonError> {
        find(&self.regulators, tf)
            .and_then(|s| self.edges.get(s.start..s.end))
            .ok_or_else(|| RegulonError::UnknownRegulator {
                query: tf.trim().to_owned(),
                suggestions: cellwright_core::closest_matches(tf.trim(), self.tfs(), 0.85, 5),
            })
    }

    /// The edges into `gene`, by regulator (ignoring case).
    pub fn regulators_of(&self, gene: &str) -> Result<Vec<&Interaction>, RegulonError> {
        find(&self.targets, gene)
            .and_then(|s| self.by_target.get(s.start..s.end))
            .map(|ids| ids.iter().filter_map(|&i| self.edges.get(i)).collect())
            .ok_or_else(|| RegulonError::UnknownTarget {
                query: gene.trim().to_owned(),
                suggestions: cellwright_core::closest_matches(gene.trim(), self.targets(), 0.85, 5),
            })
    }

    /// Every regulator, sorted ignoring case, as its first edge writes it.
    pub fn tfs(&self) -> impl Iterator<Item = &str> {
        self.regulators
            .iter()
            .filter_map(|s| self.edges.get(s.start))
            .map(|e| e.regulator.as_str())
    }

    /// Every gene with a regulator, sorted ignoring case, as its first edge writes it.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.targets
            .iter()
            .filter_map(|s| self.by_target.get(s.start).and_then(|&i| self.edges.get(i)))
            .map(|e| e.target.as_str())
    }

    /// How many edges.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Every edge, by regulator then target (ignoring case).
    pub fn iter(&self) -> std::slice::Iter<'_, Interaction> {
        self.edges.iter()
    }
}

impl<'a> IntoIterator for &'a Regulons {
    type Item = &'a Interaction;
    type IntoIter = std::slice::Iter<'a, Interaction>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// `id` is an object of a class called `class` (module not checked: pandas moves them).
fn object_of(p: &Pickle, id: NodeId, class: &str) -> Result<(NodeId, Option<NodeId>), String> {
    match p.get(id) {
        Value::Call {
            callable,
            args,
            state,
            ..
        } if p.global(*callable).is_some_and(|(_, name)| name == class) => Ok((*args, *state)),
        _ => Err(format!("expected a {class} object")),
    }
}

fn state_of(p: &Pickle, id: NodeId) -> Option<NodeId> {
    match p.get(id) {
        Value::Call { state, .. } => *state,
        _ => None,
    }
}

/// The columns of a pickled DataFrame of object columns, in the frame's order: the
/// BlockManager's layout `0.14.1` (`axes`, then `blocks` of `values` and `mgr_locs`).
fn frame_columns(p: &Pickle) -> Result<Vec<(String, Vec<&str>)>, String> {
    let (_, state) = object_of(p, p.root(), "DataFrame")?;
    let manager = state
        .and_then(|s| p.dict_get(s, "_data"))
        .ok_or("the DataFrame has no `_data`")?;
    let (_, state) = object_of(p, manager, "BlockManager")?;
    let layout = state
        .and_then(|s| p.items(s))
        .and_then(|items| items.get(3))
        .and_then(|&d| p.dict_get(d, "0.14.1"))
        .ok_or("the BlockManager's state has no `0.14.1` layout")?;
    let field = |name: &str| {
        p.dict_get(layout, name)
            .and_then(|id| p.items(id))
            .ok_or(format!("the layout has no `{name}` list"))
    };
    // axes[0] = _new_Index(Index, {'name': …, 'data': ndarray}): the column names.
    let index_data = field("axes")?
        .first()
        .and_then(|&index| match p.get(index) {
            Value::Call { args, .. } => p.items(*args)?.get(1).copied(),
            _ => None,
        })
        .and_then(|d| p.dict_get(d, "data"))
        .ok_or("the column index is not `_new_Index(cls, {'data': …})`")?;
    let (_, names) = object_array(p, index_data).map_err(|e| format!("column index: {e}"))?;
    let mut columns: Vec<Option<Vec<&str>>> = vec![None; names.len()];
    let mut rows = None;
    for (b, &block) in field("blocks")?.iter().enumerate() {
        let values = p
            .dict_get(block, "values")
            .ok_or(format!("block {b} has no values"))?;
        let (shape, values) = object_array(p, values).map_err(|e| format!("block {b}: {e}"))?;
        let &[width, n] = shape.as_slice() else {
            return Err(format!("block {b} has shape {shape:?}, not 2-D"));
        };
        if *rows.get_or_insert(n) != n {
            return Err(format!("block {b} has {n} rows, another {rows:?}"));
        }
        let locs = p
            .dict_get(block, "mgr_locs")
            .ok_or(format!("block {b} has no mgr_locs"))
            .and_then(|l| slice(p, l, names.len()).map_err(|e| format!("block {b}: {e}")))?;
        if locs.len() != width {
            return Err(format!(
                "block {b} has {width} columns, its mgr_locs {locs:?}"
            ));
        }
        for (i, col) in locs.enumerate() {
            let slot = columns.get_mut(col).ok_or(format!(
                "block {b} places a column at {col}, past the index"
            ))?;
            if slot.is_some() {
                return Err(format!("column {col} is in two blocks"));
            }
            *slot = values.get(i * n..(i + 1) * n).map(<[&str]>::to_vec);
        }
    }
    names
        .into_iter()
        .zip(columns)
        .map(|(name, values)| match values {
            Some(values) => Ok((name.to_owned(), values)),
            None => Err(format!("no block holds column `{name}`")),
        })
        .collect()
}

/// Shape and values (C order) of a pickled numpy array of Python strings: an object whose
/// state is `(version, shape, dtype, is_fortran, [str, …])`.
fn object_array(p: &Pickle, id: NodeId) -> Result<(Vec<usize>, Vec<&str>), String> {
    let state = state_of(p, id)
        .and_then(|s| p.items(s))
        .filter(|s| s.len() == 5)
        .ok_or("an array without a 5-item state")?;
    let shape = p
        .items(state[1])
        .and_then(|dims| {
            dims.iter()
                .map(|&d| p.as_int(d).and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
        })
        .ok_or("an array shape that is not a tuple of sizes")?;
    let items = p
        .items(state[4])
        .filter(|_| matches!(p.get(state[4]), Value::List(_)))
        .ok_or("an array of raw numbers, not of Python objects")?;
    let values = items
        .iter()
        .map(|&v| p.as_str(v))
        .collect::<Option<Vec<&str>>>()
        .ok_or("an object array holding something other than strings")?;
    let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if size != Some(values.len()) {
        return Err(format!("shape {shape:?} but {} values", values.len()));
    }
    let fortran = p.as_int(state[3]).unwrap_or(0) != 0;
    match (fortran, shape.as_slice()) {
        (false, _) | (true, [_]) => Ok((shape, values)),
        (true, &[rows, cols]) => {
            let c_order = (0..rows * cols)
                .filter_map(|k| values.get((k % cols) * rows + k / cols).copied())
                .collect();
            Ok((shape, c_order))
        }
        (true, _) => Err(format!("a Fortran-order array of shape {shape:?}")),
    }
}

/// The column positions a pickled `slice(start, stop, step)` names, within `len` columns.
fn slice(
    p: &Pickle,
    id: NodeId,
    len: usize,
) -> Result<std::iter::StepBy<std::ops::Range<usize>>, String> {
    let not_slice = || "mgr_locs is not a slice".to_owned();
    let Value::Call { callable, args, .. } = p.get(id) else {
        return Err(not_slice());
    };
    // `slice` itself, or dill's `_load_type('slice')`.
    let is_slice = match p.get(*callable) {
        Value::Global { name, .. } => name == "slice",
        Value::Call { args, .. } => p
            .items(*args)
            .is_some_and(|a| a.len() == 1 && p.as_str(a[0]) == Some("slice")),
        _ => false,
    };
    let bound = |i: usize, default: usize| match p.items(*args).and_then(|a| a.get(i)) {
        Some(&v) if matches!(p.get(v), Value::None) => Some(default),
        Some(&v) => p.as_int(v).and_then(|v| usize::try_from(v).ok()),
        None => None,
    };
    match (is_slice, bound(0, 0), bound(1, len), bound(2, 1)) {
        (true, Some(start), Some(stop), Some(step)) if step > 0 => {
            Ok((start..stop.max(start)).step_by(step))
        }
        _ => Err(not_slice()),
    }
}
