"""Reference counts of the Pathway Commons regulon of `priori_regulon-enrichment==1.0.8`, for
crates/cellwright-data/tests/regulons.rs.

Usage: python make_fixture.py PATH/TO/primary_intx_regulon.pkl > regulons.json

Reads the pickled pandas DataFrame without pandas, numpy or dill: every class the pickle names
is replaced by a stub that records its constructor arguments and state, and the columns are
put back together from the BlockManager's blocks (`values` ndarrays of Python strings,
`mgr_locs` slices) as pandas would. Symbols are counted as written (no two differ only in
case).
"""

import collections
import json
import pickle
import sys


class Stub:
    """Any object the pickle builds: the global it came from, its arguments and its state."""

    path, args, state = "", (), None

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args):  # what a stub returns is called in turn (dill's helpers)
        return Stub(*args)


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # A class of its own per global, so NEWOBJ can make instances of it.
        return type(name, (Stub,), {"path": f"{module}.{name}"})


def ndarray_strings(arr):
    """(shape, flat values) of a reconstructed object ndarray."""
    _, shape, _dtype, fortran, values = arr.state
    assert not fortran and all(isinstance(v, str) for v in values), "not a C-order str array"
    n = 1
    for d in shape:
        n *= d
    assert len(values) == n
    return shape, values


def columns(path):
    frame = Unpickler(open(path, "rb")).load()
    manager = frame.state["_data"]
    (version, layout), = manager.state[3].items()
    assert version == "0.14.1"
    index = layout["axes"][0]  # _new_Index(Index, {'name': None, 'data': ndarray})
    _, names = ndarray_strings(index.args[1]["data"])
    cols = {}
    for block in layout["blocks"]:
        (shape, values) = ndarray_strings(block["values"])
        start, stop, step = block["mgr_locs"].args
        rows, n = shape
        assert len(range(start, stop, step)) == rows
        for i, c in enumerate(range(start, stop, step)):
            cols[names[c]] = values[i * n:(i + 1) * n]
    return [(name, cols[name]) for name in names]


GENES = ["TP53", "MYC", "STAT3", "SOX2", "NFKB1", "E2F1", "GATA1", "CDKN1A", "VEGFA", "BCL2"]


def main(path):
    named = columns(path)
    cols = dict(named)
    up, kind, down = cols["UpGene"], cols["Type"], cols["DownGene"]
    edges = list(zip(up, kind, down))
    targets, regulators = collections.defaultdict(set), collections.defaultdict(set)
    for u, _, d in edges:
        targets[u].add(d)
        regulators[d].add(u)
    genes = {}
    for g in GENES:
        # Sorted ignoring case, as cellwright lists them.
        t = sorted(targets.get(g, ()), key=str.upper)
        r = sorted(regulators.get(g, ()), key=str.upper)
        genes[g] = {"targets": len(t), "first_targets": t[:5],
                    "regulators": len(r), "first_regulators": r[:5]}
    out = {
        "columns": [name for name, _ in named],
        "rows": len(edges),
        "distinct_edges": len(set(edges)),
        "distinct_pairs": len({(u, d) for u, _, d in edges}),
        "tfs": len(targets),
        "targets": len(regulators),
        "types": dict(sorted(collections.Counter(kind).items())),
        "self_loops": sum(u == d for u, _, d in set(edges)),
        "first_row": list(edges[0]),
        "last_row": list(edges[-1]),
        "genes": genes,
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
