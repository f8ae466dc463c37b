"""Opens files `cellwright data convert` wrote with anndata and compares them with the sources.

usage: check.py ORIGINAL.h5ad CONVERTED.h5ad TABLE.tsv CONVERTED_TABLE.h5ad
Exits non-zero, saying what differs, on any mismatch.
"""
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.simplefilter("ignore")
original, converted, table, converted_table = sys.argv[1:5]


def dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def same(what, ours, theirs, rtol=0.0):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        sys.exit(f"{what}: shape {ours.shape} vs {theirs.shape}")
    if ours.dtype.kind in "fc" or theirs.dtype.kind in "fc":
        ok = np.allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=rtol, atol=0.0, equal_nan=True)
    else:
        ok = np.array_equal(ours, theirs)
    if not ok:
        sys.exit(f"{what}: values differ\nours   {ours.ravel()[:8]}\ntheirs {theirs.ravel()[:8]}")


a = ad.read_h5ad(original)
b = ad.read_h5ad(converted)
same("obs_names", b.obs_names, a.obs_names)
same("var_names", b.var_names, a.var_names)
same("X", dense(b.X), dense(a.X))
same("layers['raw'] vs raw.X", dense(b.layers["raw"]), dense(a.raw.X))
for frame in ["obs", "var"]:
    ours, theirs = getattr(b, frame), getattr(a, frame)
    if list(ours.columns) != list(theirs.columns):
        sys.exit(f"{frame} columns {list(ours.columns)} vs {list(theirs.columns)}")
    for col in theirs.columns:
        if isinstance(theirs[col].dtype, pd.CategoricalDtype):
            if not isinstance(ours[col].dtype, pd.CategoricalDtype):
                sys.exit(f"{frame}.{col} is {ours[col].dtype}, not categorical")
            same(f"{frame}.{col} categories", ours[col].cat.categories, theirs[col].cat.categories)
            same(f"{frame}.{col} codes", ours[col].cat.codes, theirs[col].cat.codes)
        else:
            same(f"{frame}.{col}", ours[col].values, theirs[col].values)
for key in a.obsm:
    # We keep embeddings as f32; X_umap was f64.
    same(f"obsm['{key}']", b.obsm[key], a.obsm[key], rtol=1e-6)

t = pd.read_csv(table, sep="\t")
c = ad.read_h5ad(converted_table)
same("table cells", c.obs_names, t.columns)
same("table genes", c.var_names, t.index)
same("table X", dense(c.X), t.T.values)
print(f"ok: {b.n_obs}×{b.n_vars} and {c.n_obs}×{c.n_vars} open in anndata {ad.__version__ if hasattr(ad, '__version__') else ''} equal to their sources")
