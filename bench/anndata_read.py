"""anndata.read_h5ad on the same files as `cellwright bench data`, and scipy's hypergeometric
test over the same gene sets. Prints one JSON object on its last line.
"""

import argparse
import json
import statistics
import time

import anndata as ad
import numpy as np
from scipy.stats import hypergeom


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--files", nargs="+", required=True)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--sets", required=True, help="JSON: {background: [...], sets: {id: [...]}, queries: [[...]]}")
    a = p.parse_args()
    out = {"read_s": {}}
    for path in a.files:
        times = []
        for _ in range(a.repeats):
            started = time.perf_counter()
            m = ad.read_h5ad(path)
            times.append(time.perf_counter() - started)
            del m
        out["read_s"][path] = statistics.median(times)
    spec = json.load(open(a.sets))
    background = set(spec["background"])
    sets = [set(g) & background for g in spec["sets"].values()]
    sizes = np.array([len(s) for s in sets])
    times = []
    for _ in range(a.repeats):
        started = time.perf_counter()
        for query in spec["queries"]:
            q = set(query) & background
            overlap = np.array([len(q & s) for s in sets])
            pvalues = hypergeom.sf(overlap - 1, len(background), sizes, len(q))
            order = np.argsort(pvalues)
            ranked = np.empty(len(pvalues))
            ranked[order] = np.minimum.accumulate((pvalues[order] * len(pvalues) / np.arange(1, len(pvalues) + 1))[::-1])[::-1]
        times.append(time.perf_counter() - started)
    out["enrichment_s_per_query"] = statistics.median(times) / len(spec["queries"])
    out["anndata"] = ad.__version__ if hasattr(ad, "__version__") else ""
    print(json.dumps(out))


if __name__ == "__main__":
    main()
