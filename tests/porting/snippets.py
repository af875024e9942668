"""Short PyTorch programs, as a user writes them, run once with ``torch`` and once with bpcli.

Each snippet is source text that uses the names ``torch``, ``F`` (torch.nn.functional) and ``nn``
(torch.nn), reads its inputs from ``data`` (a dict of numpy arrays) and leaves what is compared
in ``out`` (a dict of tensors, numbers or tuples of them). The test runs it with the real torch
and with ``torch = bpcli``, ``F = bpcli.functional``, ``nn = bpcli.nn``, and compares.
"""

import numpy as np

SNIPPETS: dict[str, str] = {}
DATA: dict[str, dict[str, np.ndarray]] = {}


def snippet(name: str, **arrays):
    def register(src: str):
        SNIPPETS[name] = src
        DATA[name] = arrays
        return src

    return register


_r = np.random.default_rng(0)


def _n(*shape):
    return _r.standard_normal(shape).astype(np.float32)


snippet("causal_attention", x=_n(2, 5, 8), wq=_n(8, 8), wk=_n(8, 8), wv=_n(8, 8))("""
x = torch.tensor(data["x"], requires_grad=True)
wq, wk, wv = (torch.tensor(data[k], requires_grad=True) for k in ("wq", "wk", "wv"))
q, k, v = x @ wq, x @ wk, x @ wv
T = x.size(1)
scores = q @ k.transpose(-2, -1) / (q.size(-1) ** 0.5)
mask = torch.tril(torch.ones(T, T))
scores = scores.masked_fill(mask == 0, float("-inf"))
att = F.softmax(scores, dim=-1)
y = att @ v
y.sum().backward()
out = {"y": y, "att": att, "dx": x.grad, "dwq": wq.grad, "dwv": wv.grad}
""")

snippet("cnn_interpolate", x=_n(2, 1, 8, 8), w=_n(4, 1, 3, 3), b=_n(4), fw=_n(3, 64), y=np.array([0, 2]))("""
x = torch.tensor(data["x"])
w = torch.tensor(data["w"], requires_grad=True)
b = torch.tensor(data["b"], requires_grad=True)
fw = torch.tensor(data["fw"], requires_grad=True)
h = F.relu(F.conv2d(x, w, b, padding=1))
h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
h = F.max_pool2d(h, 4)
logits = F.linear(torch.flatten(h, 1), fw)
loss = F.cross_entropy(logits, torch.tensor(data["y"]))
loss.backward()
out = {"loss": loss, "dw": w.grad, "db": b.grad, "dfw": fw.grad, "shape": tuple(h.shape)}
""")

snippet("sgd_loop_in_place", x=_n(16, 3), y=_n(16, 1), w=_n(3, 1))("""
x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
w = torch.tensor(data["w"], requires_grad=True)
b = torch.zeros(1, requires_grad=True)
losses = []
for step in range(5):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b.sub_(0.1 * b.grad)
        w.grad.zero_()
        b.grad.zero_()
    losses.append(loss.item())
out = {"w": w, "b": b, "losses": tuple(losses)}
""")

snippet("custom_loss_std_clamp", p=_n(10), t=np.abs(_n(10)) + 0.5)("""
pred = torch.tensor(data["p"], requires_grad=True)
target = torch.tensor(data["t"])
err = (pred - target).abs().clamp(min=0.1, max=2.0)
loss = (err / target.std()).mean() + 0.01 * pred.pow(2).sum().sqrt()
loss.backward()
out = {"loss": loss, "dp": pred.grad, "std": target.std(unbiased=False)}
""")

snippet("transpose_repeat_permute", x=_n(2, 3), z=_n(2, 3, 4))("""
x = torch.tensor(data["x"], requires_grad=True)
z = torch.tensor(data["z"], requires_grad=True)
a = x.transpose(0, 1).repeat(2, 1)
b = z.permute(2, 0, 1).reshape(4, -1)
c = z.transpose(1, 2).contiguous().view(2, -1)
(a.sum() * 2 + (b * b).sum() + c[:, ::2].sum()).backward()
out = {"a": a, "b": b, "c": c, "dx": x.grad, "dz": z.grad, "mT": z.mT, "T": x.T,
       "ri": x.repeat_interleave(2, dim=1)}
""")

snippet("torch_indexing", z=_n(2, 3, 4), m=_n(2, 3))("""
z = torch.tensor(data["z"], requires_grad=True)
idx = torch.tensor([3, 0])
a = z[0, :, idx]
b = z[:, [0, 2]]
c = z[torch.tensor(data["m"]) > 0]
d = z[..., 1:3][1]
(a.sum() + 2 * b.sum() + 3 * c.sum() + 4 * d.sum()).backward()
out = {"a": a, "b": b, "c": c, "d": d, "dz": z.grad}
""")

snippet("max_dim_and_gather", t=_n(4, 5))("""
t = torch.tensor(data["t"], requires_grad=True)
vals, idx = t.max(dim=1)
m = t.min(dim=0, keepdim=True)
g = t.gather(1, idx.unsqueeze(1))
(vals.sum() + m.values.sum() + g.sum() + t.amax(dim=0).sum()).backward()
out = {"vals": vals, "idx": idx, "mv": m.values, "mi": m.indices, "g": g, "dt": t.grad,
       "argmax": t.argmax(dim=1), "max": t.max(), "size": tuple(t.size()), "size1": t.size(1),
       "numel": t.numel(), "dim": t.dim()}
""")

snippet("dtype_promotion")("""
i = torch.tensor([1, 2, 3])
out = {"div": i / 2, "mulf": i * 1.5, "arange": torch.arange(5.5, 8, 1.0),
       "cos": torch.tensor(2).cos() if hasattr(torch.tensor(2), "cos") else None,
       "full": torch.full((2,), 4), "fullf": torch.full((2,), 4.0),
       "mix": torch.ones(3) * torch.arange(0.0, 3.0, 1.0), "floordiv": i // 2, "mod": i % 2,
       "exp": torch.tensor([0, 1]).exp(), "sum_int": i.sum(), "mean": i.float().mean()}
out = {k: v for k, v in out.items() if v is not None}
""")

snippet("pre_norm_mlp_block", x=_n(3, 4, 8), w1=_n(16, 8), w2=_n(8, 16), g=_n(8), beta=_n(8))("""
x = torch.tensor(data["x"], requires_grad=True)
w1, w2 = torch.tensor(data["w1"], requires_grad=True), torch.tensor(data["w2"], requires_grad=True)
g, beta = torch.tensor(data["g"], requires_grad=True), torch.tensor(data["beta"], requires_grad=True)
h = F.layer_norm(x, (8,), g, beta)
y = x + F.linear(F.gelu(F.linear(h, w1)), w2)
loss = y.pow(2).mean()
loss.backward()
out = {"y": y, "dx": x.grad, "dw1": w1.grad, "dg": g.grad, "dbeta": beta.grad}
""")

snippet("einsum_bmm", a=_n(2, 3, 4), b=_n(2, 4, 5))("""
a = torch.tensor(data["a"], requires_grad=True)
b = torch.tensor(data["b"], requires_grad=True)
c = torch.einsum("bij,bjk->bik", a, b)
d = torch.bmm(a, b)
e = torch.einsum("bij->bj", a)
(c.sum() + (d * d).sum() + e.sum()).backward()
out = {"c": c, "d": d, "e": e, "da": a.grad, "db": b.grad}
""")

snippet("top_p_filtering", logits=_n(2, 10))("""
logits = torch.tensor(data["logits"], requires_grad=True)
sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
remove = cum > 0.7
remove[..., 1:] = remove[..., :-1].clone()
remove[..., 0] = False
keep = sorted_logits.masked_fill(remove, -1e9)
probs = F.softmax(keep, dim=-1)
(probs * torch.arange(10.0)).sum().backward()
out = {"idx": sorted_idx, "probs": probs, "dl": logits.grad, "topk": torch.topk(logits, 3).values}
""")

snippet("module_list_state_dict", x=_n(5, 4))("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 6), nn.Linear(6, 2)])
        self.register_buffer("scale", torch.ones(2) * 2)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x * self.scale

net = Net()
g = np.random.default_rng(1)
net.load_state_dict({k: torch.tensor(g.standard_normal(tuple(v.shape)).astype(np.float32))
                     for k, v in sorted(net.state_dict().items())})
x = torch.tensor(data["x"])
y = net(x)
y.sum().backward()
out = {"y": y, "keys": tuple(sorted(net.state_dict())), "dw0": net.layers[0].weight.grad,
       "n": sum(p.numel() for p in net.parameters())}
""")

snippet("adam_steps", x=_n(8, 4), w=_n(4, 2))("""
x = torch.tensor(data["x"])
w = torch.tensor(data["w"], requires_grad=True)
opt = torch.optim.Adam([w], lr=0.01, weight_decay=0.01)
for _ in range(5):
    opt.zero_grad()
    loss = F.mse_loss(x @ w, torch.zeros(8, 2))
    loss.backward()
    opt.step()
out = {"w": w, "loss": loss}
""")

snippet("bce_one_hot", z=_n(6, 3), y=np.array([0, 2, 1, 1, 0, 2]))("""
z = torch.tensor(data["z"], requires_grad=True)
t = F.one_hot(torch.tensor(data["y"]), num_classes=3).float()
p = torch.sigmoid(z)
loss = F.binary_cross_entropy(p, t) + F.logsigmoid(z).mean().neg()
loss.backward()
out = {"loss": loss, "dz": z.grad, "t": t}
""")
