"""The op registry as rows a person can review: name, family, formula, ONNX op."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class OpRow:
    name: str
    family: str
    formula: str
    onnx: str | None
    differentiable: bool
    outputs: int

    def to_dict(self) -> dict:
        return asdict(self)


def ops_table() -> list[OpRow]:
    from bpcli import functional  # noqa: F401 - importing it registers every op
    from bpcli.engine.op import OPS

    rows = []
    for name, op in sorted(OPS.items(), key=lambda kv: (kv[1].__module__, kv[0])):
        doc = " ".join((op.__doc__ or "").split())
        rows.append(
            OpRow(
                name,
                op.__module__.rsplit(".", 1)[-1],
                doc,
                op.onnx,
                op.differentiable,
                op.n_outputs,
            )
        )
    return rows
