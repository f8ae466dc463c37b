"""Expected values for cellwright-data's matrix tests, computed with anndata and scanpy.

Run in a venv with anndata==0.12.6 and scanpy==1.11.5:
    python tests/data/matrix/make_fixture.py PBMC68K_H5AD PBMC_RAW_TXT > tests/data/matrix/expected.json
PBMC68K_H5AD is scanpy/datasets/10x_pbmc68k_reduced.h5ad from the scanpy wheel; PBMC_RAW_TXT is
Seurat's extdata/pbmc_raw.txt (`cellwright data fetch pbmc68k_reduced pbmc_raw` puts both in the cache).
"""
import json
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

warnings.simplefilter("ignore")
h5ad_path, raw_path = sys.argv[1], sys.argv[2]


def floats(values):
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


a = ad.read_h5ad(h5ad_path)
kinds = {"category": "categorical", "int64": "int", "float32": "float", "float64": "float", "bool": "bool"}
pbmc68k = {
    "shape": list(a.shape),
    "cells": a.obs_names[:3].tolist(),
    "genes": a.var_names[:3].tolist(),
    "obs_kinds": {c: kinds[str(a.obs[c].dtype)] for c in a.obs.columns},
    "var_kinds": {c: kinds[str(a.var[c].dtype)] for c in a.var.columns},
    "bulk_labels": a.obs["bulk_labels"][:5].astype(str).tolist(),
    "bulk_label_categories": a.obs["bulk_labels"].cat.categories.tolist(),
    "n_genes": a.obs["n_genes"][:5].astype(int).tolist(),
    "percent_mito": floats(a.obs["percent_mito"][:5]),
    "highly_variable": int(a.var["highly_variable"].sum()),
    "x_sum": float(np.asarray(a.X, dtype=np.float64).sum()),
    "x_row0": floats(a.X[0, :5]),
    "raw_sum": float(a.raw.X.astype(np.float64).sum()),
    "raw_nnz": int(a.raw.X.nnz),
    "raw_row0": floats(a.raw.X[0, :8].toarray().ravel()),
    "obsm_shapes": {k: list(v.shape) for k, v in a.obsm.items()},
    "x_pca_row0": floats(a.obsm["X_pca"][0, :3]),
    "x_umap_row0": floats(a.obsm["X_umap"][0]),
}

table = pd.read_csv(raw_path, sep="\t")  # R's layout: genes × cells, no corner cell
b = ad.AnnData(np.array(table.T.values, dtype=np.float32), obs=pd.DataFrame(index=table.columns), var=pd.DataFrame(index=table.index))
counts = np.asarray(b.X, dtype=np.float64)
pbmc_raw = {
    "shape": list(b.shape),
    "cells": b.obs_names[:3].tolist(),
    "genes": b.var_names[:3].tolist(),
    "total": float(counts.sum()),
    "cell_totals": floats(counts.sum(axis=1)[:5]),
}
sc.pp.normalize_total(b)
sc.pp.log1p(b)
x = np.asarray(b.X, dtype=np.float64)
pbmc_raw["normalized_sum"] = float(x.sum())
pbmc_raw["normalized_row0"] = floats(x[0, :10])
hv = sc.pp.highly_variable_genes(b, n_top_genes=20, flavor="seurat", inplace=False)
pbmc_raw["hvg_top"] = sorted(b.var_names[hv["highly_variable"].values].tolist())
pbmc_raw["hvg_means"] = floats(hv["means"].values[:10])
pbmc_raw["hvg_dispersions"] = floats(hv["dispersions"].values[:10])
pbmc_raw["hvg_dispersions_norm"] = floats(hv["dispersions_norm"].values)

centred = x - x.mean(axis=0)
u, s, vt = np.linalg.svd(centred, full_matrices=False)
variance = s**2 / (x.shape[0] - 1)
pbmc_raw["pca_explained_variance_ratio"] = floats((variance / centred.var(axis=0, ddof=1).sum())[:10])
pbmc_raw["pca_abs_scores_row0"] = floats(np.abs(u[0, :5] * s[:5]))

json.dump({"pbmc68k_reduced": pbmc68k, "pbmc_raw": pbmc_raw}, sys.stdout, indent=1)
print()
