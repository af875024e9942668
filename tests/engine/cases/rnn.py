"""Cases for engine/ops/rnn.py (torch.lstm_cell / torch.gru_cell are the fused aten cells
behind torch.nn.LSTMCell / GRUCell)."""

import torch
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case


def _cell_shapes(gates: int, n_states: int, bias: bool = True):
    @st.composite
    def draw_shapes(draw):
        n = draw(st.integers(1, 4))
        i = draw(st.integers(1, 5))
        h = draw(st.integers(1, 4))
        shapes = [(n, i)] + [(n, h)] * n_states + [(gates * h, i), (gates * h, h)]
        return tuple(shapes + ([(gates * h,)] * 2 if bias else []))

    return draw_shapes()


def _scaled(shapes, dtype, rng):
    # Weights of std 0.6 keep the gates off saturation, where every gradient is ~0.
    return [
        (rng.standard_normal(s) * (1.0 if k < 3 else 0.6)).astype(dtype)
        for k, s in enumerate(shapes)
    ]


def _lstm_bp(x, h, c, *w):
    return F.lstm_cell(x, h, c, *w)


def _lstm_torch(x, h, c, *w):
    return torch.lstm_cell(x, (h, c), *w, *([None, None] if len(w) == 2 else []))


def _gru_torch(x, h, *w):
    return torch.gru_cell(x, h, *w, *([None, None] if len(w) == 2 else []))


TOL32 = (2e-4, 2e-5)

CASES = [
    Case("lstm_cell", _lstm_bp, _lstm_torch, _cell_shapes(4, 2), gen=_scaled, tol32=TOL32),
    Case("lstm_cell", _lstm_bp, _lstm_torch, _cell_shapes(4, 2, bias=False), gen=_scaled,
         tol32=TOL32, id="lstm_cell_nobias"),
    Case("lstm_cell", lambda x, h, c, a, b: F.lstm_cell(x, None, None, a, b),
         lambda x, h, c, a, b: torch.lstm_cell(x, (h * 0, c * 0), a, b),
         _cell_shapes(4, 2, bias=False), gen=_scaled, tol32=TOL32,
         diff=(True, False, False, True, True), id="lstm_cell_zero_state"),
    Case("gru_cell", F.gru_cell, _gru_torch, _cell_shapes(3, 1), gen=_scaled, tol32=TOL32),
    Case("gru_cell", F.gru_cell, _gru_torch, _cell_shapes(3, 1, bias=False), gen=_scaled,
         tol32=TOL32, id="gru_cell_nobias"),
    Case("gru_cell", lambda x, h, a, b, bi, bh: F.gru_cell(x[0], h[0], a, b, bi, bh),
         lambda x, h, a, b, bi, bh: torch.gru_cell(x[:1], h[:1], a, b, bi, bh)[0],
         _cell_shapes(3, 1), gen=_scaled, tol32=TOL32, id="gru_cell_unbatched"),
    Case("lstm_cell", lambda x, h, c, *w: F.lstm_cell(x[0], h[0], c[0], *w),
         lambda x, h, c, *w: tuple(o[0] for o in torch.lstm_cell(x[:1], (h[:1], c[:1]), *w)),
         _cell_shapes(4, 2), gen=_scaled, tol32=TOL32, id="lstm_cell_unbatched"),
]  # fmt: skip
