"""Cases for engine/ops/rnn.py (torch.lstm_cell / torch.gru_cell are the fused aten cells
behind torch.nn.LSTMCell / GRUCell) and engine/ops/rnn_seq.py (the cell maths looped in torch
over the same precomputed input gates)."""

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


def _seq_shapes(gates: int, n_states: int, bias: bool = True):
    @st.composite
    def draw_shapes(draw):
        t, n, h = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
        shapes = [(t, n, gates * h)] + [(n, h)] * n_states + [(gates * h, h)]
        return tuple(shapes + ([(gates * h,)] if bias else []))

    return draw_shapes()


def _steps(t_len, reverse):
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _in_order(outs, reverse):
    return torch.stack(outs[::-1] if reverse else outs)


def _lstm_seq_torch(reverse):
    def run(xg, h, c, w, b=None, w_hr=None):
        outs = []
        for t in _steps(xg.shape[0], reverse):
            g = xg[t] + h @ w.T + (0 if b is None else b)
            i, f, gg, o = g.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
            if w_hr is not None:
                h = h @ w_hr.T
            outs.append(h)
        return _in_order(outs, reverse), h, c

    return run


def _lstm_proj_shapes(bias: bool = True):
    """xg, h0 (N, P), c0 (N, H), w_hh (4H, P), [b_hh (4H,)], w_hr (P, H); P may exceed H."""

    @st.composite
    def draw_shapes(draw):
        t, n = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        h, p = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        bias_shape = [(4 * h,)] if bias else []
        return ((t, n, 4 * h), (n, p), (n, h), (4 * h, p), *bias_shape, (p, h))

    return draw_shapes()


def _lstm_proj_case(reverse: bool, bias: bool) -> Case:
    def ours(xg, h, c, w, *rest):
        return F.lstm_seq(xg, h, c, w, rest[0] if bias else None, reverse, w_hr=rest[-1])

    def ref(xg, h, c, w, *rest):
        return _lstm_seq_torch(reverse)(xg, h, c, w, rest[0] if bias else None, rest[-1])

    name = "lstm_seq_proj" + ("_rev" if reverse else "") + ("" if bias else "_nobias")
    return Case("lstm_seq", ours, ref, _lstm_proj_shapes(bias), gen=_seq_gen, tol32=TOL32,
                id=name)  # fmt: skip


def _gru_seq_torch(reverse):
    def run(xg, h, w, b=None):
        outs = []
        for t in _steps(xg.shape[0], reverse):
            gh = h @ w.T + (0 if b is None else b)
            ir, iz, i_n = xg[t].chunk(3, dim=1)
            hr, hz, h_n = gh.chunk(3, dim=1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = torch.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
            outs.append(h)
        return _in_order(outs, reverse), h

    return run


def _rnn_seq_torch(reverse, nonlinearity="tanh"):
    act = torch.tanh if nonlinearity == "tanh" else torch.relu

    def run(xg, h, w, b=None):
        outs = []
        for t in _steps(xg.shape[0], reverse):
            h = act(xg[t] + h @ w.T + (0 if b is None else b))
            outs.append(h)
        return _in_order(outs, reverse), h

    return run


def _seq_gen(shapes, dtype, rng):
    # Gates at unit scale, states and W_hh, b_hh smaller: over 4 steps the gates stay off
    # saturation, where every gradient is ~0.
    return [(rng.standard_normal(s) * (1.0 if k == 0 else 0.6)).astype(dtype)
            for k, s in enumerate(shapes)]  # fmt: skip


TOL32 = (2e-4, 2e-5)
SEQ_VARIANTS = ((False, True), (True, True), (False, False), (True, False))
SEQ_FNS = {"lstm": (F.lstm_seq, _lstm_seq_torch, 4, 2), "gru": (F.gru_seq, _gru_seq_torch, 3, 1),
           "rnn": (F.rnn_seq, _rnn_seq_torch, 1, 1)}  # fmt: skip


def _seq_case(kind: str, reverse: bool, bias: bool, nonlinearity: str | None = None) -> Case:
    """One {lstm,gru,rnn}_seq case; the bias is passed as None when ``bias`` is False."""
    fn, ref, gates, n_states = SEQ_FNS[kind]
    kw = {"nonlinearity": nonlinearity} if nonlinearity else {}

    def ours(*a):
        n = 2 + n_states
        return fn(*a[:n], a[n] if bias else None, reverse, **kw)

    name = f"{kind}_seq{'_' + nonlinearity if nonlinearity else ''}"
    name += ("_rev" if reverse else "") + ("" if bias else "_nobias")
    return Case(f"{kind}_seq", ours, ref(reverse, **kw), _seq_shapes(gates, n_states, bias),
                gen=_seq_gen, tol32=TOL32, id=name)  # fmt: skip


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
    *[_seq_case(k, rev, bias) for k in ("lstm", "gru", "rnn") for rev, bias in SEQ_VARIANTS],
    _seq_case("rnn", False, True, "relu"),
    _seq_case("rnn", True, True, "relu"),
    Case("lstm_seq", lambda xg, h, c, w: F.lstm_seq(xg, None, None, w, reverse=True),
         lambda xg, h, c, w: _lstm_seq_torch(True)(xg, h * 0, c * 0, w),
         _seq_shapes(4, 2, bias=False), gen=_seq_gen, tol32=TOL32,
         diff=(True, False, False, True), id="lstm_seq_zero_state"),
    *[_lstm_proj_case(rev, bias) for rev, bias in SEQ_VARIANTS],
    Case("lstm_seq", lambda xg, h, c, w, r: F.lstm_seq(xg, None, None, w, w_hr=r),
         lambda xg, h, c, w, r: _lstm_seq_torch(False)(xg, h * 0, c * 0, w, None, r),
         _lstm_proj_shapes(bias=False), gen=_seq_gen, tol32=TOL32,
         diff=(True, False, False, True, True), id="lstm_seq_proj_zero_state"),
]  # fmt: skip
