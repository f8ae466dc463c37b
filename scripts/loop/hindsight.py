#!/usr/bin/env python3
"""How many of a DepMap task's true top k could any ranking from gene knowledge find?

For each "most harmful" task of examples/loops, every candidate is predicted from every
*other* candidate's measured gene effect (leave one out, so with far more results than a
loop ever has), and the best `budget` predictions are counted against the true top k.
Predictors: similarity-weighted means over gene-set memberships (the agent's features),
kernel ridge regression on the memberships and the essential-machinery prior, and, with
--embeddings, the MiniLM gene embeddings that `cellwright embed genes` writes. Each is also
mixed with the prior. If none reaches a number of hits, no learner on that knowledge will
within the budget either: the genes it misses look, to that knowledge, like the ones that
are not hits.

Needs numpy and the cached data (`cellwright data fetch depmap-500 gene-sets`).

    python3 scripts/loop/hindsight.py [--embeddings TABLE.safetensors]

The embeddings of the candidates (a minute on 2 cores):

    cellwright embed genes --table /tmp/genes.safetensors \
        --genes "$(python3 scripts/loop/hindsight.py --genes)"
"""

import argparse
import csv
import json
import struct
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache/cellwright/packages/pythonflex-0.4/pythonflex/data"
ROOT = Path(__file__).resolve().parents[2]
ESSENTIAL = [
    "KEGG_RIBOSOME",
    "KEGG_SPLICEOSOME",
    "KEGG_PROTEASOME",
    "KEGG_RNA_POLYMERASE",
    "KEGG_DNA_REPLICATION",
]
MAX_SET = 300  # as the loop's knowledge (crates/cellwright-loop/src/knowledge.rs)


def task_effects(task):
    """Candidates and their mean gene effect over the task's cell lines, oriented so that
    larger is better."""
    backend = task["backend"]
    path = CACHE / f"dataset/{backend['screen']}_cell_lines_500_genes.csv"
    rows = list(csv.reader(open(path)))
    header = rows[0]
    lines = backend.get("cell_lines") or header[1:]
    cols = [header.index(c) for c in lines]
    genes, values = [], []
    for r in rows[1:]:
        cells = [r[c] for c in cols if r[c] not in ("", "NA")]
        if cells:
            genes.append(r[0])
            values.append(np.mean([float(x) for x in cells]))
    sign = -1.0 if task.get("direction", "min") == "min" else 1.0
    return genes, sign * np.array(values)


def memberships(genes):
    index = {g: i for i, g in enumerate(genes)}
    n = len(genes)
    columns, names = [], []
    for f in ["pathway", "corum", "gobp"]:
        for r in csv.DictReader(open(CACHE / f"gold_standard/{f}.csv")):
            members = sorted({index[g] for g in r["Genes"].split(";") if g in index})
            if 2 <= len(members) <= MAX_SET and np.log(n / len(members)) >= 0.05:
                col = np.zeros(n)
                col[members] = 1.0
                columns.append(col)
                names.append(r["Name"])
    m = np.stack(columns, axis=1)
    prior = sum(m[:, names.index(s)] for s in ESSENTIAL if s in names)
    return m, prior


def embeddings(path, genes):
    blob = Path(path).read_bytes()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + size])
    table = header["embeddings"]
    start, end = table["data_offsets"]
    e = np.frombuffer(blob[8 + size + start : 8 + size + end], dtype=np.float32)
    e = e.reshape(table["shape"])
    order = {g: i for i, g in enumerate(json.loads(header["__metadata__"]["genes"]))}
    e = e[[order[g] for g in genes]]
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def neighbour_mean(similarity, y):
    s = similarity.copy()
    np.fill_diagonal(s, 0.0)
    return (s @ y) / (s.sum(axis=1) + 1e-3)


def ridge_loo(x, y, lam):
    """Leave-one-out predictions of kernel ridge regression, in closed form."""
    h = np.linalg.inv(x @ x.T + lam * np.eye(len(y)))
    a = h @ (y - y.mean())
    return y - a / np.diag(h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings", help="gene-embedding table (safetensors)")
    ap.add_argument("--genes", action="store_true", help="print the candidates and stop")
    args = ap.parse_args()
    if args.genes:
        task = json.loads((ROOT / "examples/loops/liver_harmful.json").read_text())
        print(",".join(task_effects(task)[0]))
        return
    for name in ["liver_harmful", "melanoma12_harmful"]:
        task = json.loads((ROOT / f"examples/loops/{name}.json").read_text())
        genes, y = task_effects(task)
        k, budget = task["top_k"], task["rounds"] * task["batch"]
        truth = set(np.argsort(-y)[:k])
        m, prior = memberships(genes)
        n = len(genes)
        weighted = m * np.log(n / m.sum(axis=0))
        unit = weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-9)
        cosine = np.clip(unit @ unit.T, 0.0, None)
        predictors = {
            "set cosine": neighbour_mean(cosine, y),
            "set cosine squared": neighbour_mean(cosine**2, y),
        }
        for lam in [1.0, 10.0]:
            x = np.hstack([weighted, 3.0 * prior[:, None]])
            predictors[f"ridge (λ {lam:g})"] = ridge_loo(x, y, lam)
        if args.embeddings:
            e = embeddings(args.embeddings, genes)
            near = np.clip(e @ e.T - 0.5, 0.0, None) ** 4
            predictors["text embedding"] = neighbour_mean(near, y)
            predictors["text + set"] = neighbour_mean(near + cosine**2, y)
        hit_mean = y[prior > 0].mean()

        def found(score):
            return len(truth & set(np.argsort(-score, kind="stable")[:budget]))

        print(f"{name}: top {k}, {budget} picks, {n} candidates")
        print(f"  prior alone: {found(prior + 1e-6 * np.arange(n)[::-1]):>2}")
        for label, pred in predictors.items():
            mixed = max(found(pred + w * hit_mean * prior) for w in [0.5, 1.0, 2.0])
            print(f"  {label:<22} {found(pred):>2}   with the prior: {mixed:>2}")
        best = max(
            found(p + w * hit_mean * prior) for p in predictors.values() for w in [0, 0.5, 1, 2]
        )
        missed = sorted(
            (genes[g] for g in truth if prior[g] == 0), key=lambda g: y[genes.index(g)]
        )
        print(f"  best of all: {best}; top-{k} genes outside the prior: {', '.join(missed)}")


if __name__ == "__main__":
    main()
