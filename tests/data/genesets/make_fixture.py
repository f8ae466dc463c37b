"""Reference over-representation results computed with scipy, for
crates/cellwright-data/tests/genesets.rs.

Usage: python make_fixture.py PATH/TO/pathway.csv > enrichment.json

Background: every gene of the collection. For each query and each set sharing a gene with
it: p = hypergeom.sf(k - 1, N, K, n); q: Benjamini-Hochberg over all sets with a gene in the
background. The 25 smallest p per query are kept.
"""

import csv
import json
import sys

import numpy as np
from scipy.stats import hypergeom

QUERIES = {
    "glycolysis": ["HK1", "HK2", "PFKM", "PFKL", "ALDOA", "TPI1", "GAPDH", "PGK1", "ENO1", "PKLR", "LDHA"],
    "cell_cycle": ["CDK1", "CCNB1", "CCNB2", "PLK1", "BUB1", "BUB1B", "MAD2L1", "CDC20", "CCNA2", "CDK2", "CDKN1A", "TP53"],
    "immune": ["IL6", "TNF", "IFNG", "CXCL10", "STAT1", "JAK1", "JAK2", "IL2RA", "CD4", "NOT_A_GENE"],
    "mixed": ["GAPDH", "CDK1", "IL6", "BRCA1", "MYC", "EGFR", "ACTB", "SOX2"],
}


def main(path):
    sets = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            genes = sorted({g.strip() for g in row["Genes"].split(";") if g.strip()})
            sets.append((row["ID"].strip(), genes))
    background = set(g for _, genes in sets for g in genes)
    N = len(background)
    out = {}
    for name, query in QUERIES.items():
        tested_query = {g for g in query if g in background}
        n = len(tested_query)
        rows = []
        tested = 0
        for set_id, genes in sets:
            K = len([g for g in genes if g in background])
            if K == 0:
                continue
            tested += 1
            overlap = sorted(g for g in genes if g in tested_query)
            if overlap:
                rows.append([set_id, K, overlap, float(hypergeom.sf(len(overlap) - 1, N, K, n))])
        rows.sort(key=lambda r: (r[3], r[0]))
        p = np.array([r[3] for r in rows])
        ranks = np.arange(1, len(p) + 1)
        q = np.minimum.accumulate((p * tested / ranks)[::-1])[::-1]
        q = np.minimum(q, 1.0)
        out[name] = {
            "query": query,
            "tested": tested,
            "results": [
                {"id": r[0], "set_size": r[1], "overlap": r[2], "p": r[3], "q": float(qv)}
                for r, qv in zip(rows[:25], q[:25])
            ],
        }
    json.dump({"background_size": N, "queries": out}, sys.stdout, indent=0)


if __name__ == "__main__":
    main(sys.argv[1])
