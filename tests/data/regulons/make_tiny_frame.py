"""A tiny pickle laid out like priori's pandas DataFrame, for
crates/cellwright-data/tests/regulons.rs: the reader must place columns by `mgr_locs`, not
by block order.

Usage: python make_tiny_frame.py > tiny_frame.pkl

No pandas or numpy: stand-in classes are registered under the module names pandas and numpy
use, so the pickle names the same globals. Block 0 holds `DownGene` (placed by a plain
`slice(2, 3, None)`), block 1 holds `UpGene` and `Type` in Fortran order (placed by dill's
`_load_type('slice')(0, 2, 1)`). Symbols are mixed case and one edge is given twice.
"""

import pickle
import sys
import types


def module(name, **attrs):
    # Importing `a.b.c` imports `a` and `a.b` first: stand-ins for them too.
    parts = name.split(".")
    for i in range(1, len(parts)):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__, value.__qualname__ = name, key
        setattr(mod, key, value)
    sys.modules[name] = mod
    return mod


class DataFrame:
    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (DataFrame, (), self.state)


class BlockManager(DataFrame):
    def __reduce__(self):
        return (BlockManager, (), self.state)


class Index:
    pass


class ndarray:
    pass


def _new_Index(cls, d):
    pass


def _reconstruct(cls, shape, dtype):
    pass


def _load_type(name):
    pass


module("pandas.core.frame", DataFrame=DataFrame)
module("pandas.core.internals.managers", BlockManager=BlockManager)
module("pandas.core.indexes.base", _new_Index=_new_Index, Index=Index)
module("numpy.core.multiarray", _reconstruct=_reconstruct)
module("numpy", ndarray=ndarray)
module("dill._dill", _load_type=_load_type)


class Call:
    """`func(*args)`, then BUILD with `state` when given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class LoadType:
    """dill's `_load_type('slice')`: a call whose result is called again."""

    def __call__(self, *args):
        pass

    def __reduce__(self):
        return (_load_type, ("slice",))


def array(shape, values, fortran=False):
    return Call(_reconstruct, (ndarray, (0,), b"b"), (1, shape, None, fortran, values))


up = ["TP53", "TP53", "Myc", "MYC", "E2F1", "TP53"]
kind = ["controls-expression-of"] * 6
down = ["MDM2", "CDKN1A", "CDK4", "cdk4", "CDKN1A", "MDM2"]
n = len(up)
# Fortran order: element (r, c) at c * 2 + r.
fortran = [v for pair in zip(up, kind) for v in pair]
blocks = [
    {"values": array((1, n), down), "mgr_locs": slice(2, 3, None)},
    {"values": array((2, n), fortran, True), "mgr_locs": Call(LoadType(), (0, 2, 1))},
]
columns = Call(_new_Index, (Index, {"name": None, "data": array((3,), ["UpGene", "Type", "DownGene"])}))
manager = BlockManager((None, None, None, {"0.14.1": {"axes": [columns, None], "blocks": blocks}}))
frame = DataFrame({"_metadata": [], "_data": manager, "_typ": "dataframe"})
sys.stdout.buffer.write(pickle.dumps(frame, protocol=4))
