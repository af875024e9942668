"""Cases for engine/ops/setitem.py: ``y = x.clone(); y[index] = v`` recorded in the graph, for
basic, advanced (distinct rows) and mask indices, against torch's in-place write."""

from tests.engine.harness import Case, one_shape


def _written(index_of):
    def fn(x, v, *idx):
        y = x.clone()
        y[index_of(*idx)] = v
        return y

    return fn


def _rows_gen(shapes, dtype, rng):
    (x,) = shapes
    rows = rng.permutation(x[0])[: rng.integers(1, x[0] + 1)]
    return [rng.standard_normal(x).astype(dtype), rng.standard_normal((len(rows), *x[1:]))
            .astype(dtype), rows]  # fmt: skip


def _slice_gen(shapes, dtype, rng):
    (x,) = shapes
    return [rng.standard_normal(x).astype(dtype), rng.standard_normal(x[2:]).astype(dtype)]


def _mask_gen(shapes, dtype, rng):
    (x,) = shapes
    return [rng.standard_normal(x).astype(dtype), rng.standard_normal(()).astype(dtype),
            rng.random(x) < 0.5]  # fmt: skip


def _first(*idx):
    return idx[0]


CASES = [
    Case("setitem", _written(_first), _written(_first), one_shape(1, 3, 1, 4), gen=_rows_gen,
         diff=(True, True, False), id="setitem[rows]"),
    Case("setitem", _written(lambda: (slice(None), 0)), _written(lambda: (slice(None), 0)),
         one_shape(2, 3, 1, 4), gen=_slice_gen, diff=(True, True), id="setitem[:, 0]"),
    Case("setitem", _written(_first), _written(_first), one_shape(1, 3, 1, 4), gen=_mask_gen,
         diff=(True, True, False), id="setitem[mask]"),
]  # fmt: skip
