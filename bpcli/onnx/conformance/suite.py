"""Run onnx's backend conformance suite against bpcli and tabulate the results.

``python -m bpcli.onnx.conformance.suite [-k PATTERN] [--tiers] [--failures] [--no-real]``

Node, simple and PyTorch test models come from the installed onnx package's data directory,
and so do the nine model-zoo ("real") CNNs: the suite ships them as "light" models whose
weights are ConstantOfShape nodes, with their expected outputs stored beside them (the runner
writes the generated inputs under ``$ONNX_HOME``, pointed at a temporary directory here).
Results are grouped per category, per op and per tier (the op tiers of the importer: MLP,
CNN, model-zoo, sequence/transformer), and checked against the expected-failure list
``conformance_xfail.txt`` (one ``pattern  # reason`` a line).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import unittest
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TIERS: dict[str, tuple[str, ...]] = {
    "mlp": ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Tanh", "Sigmoid", "Softmax",
            "LogSoftmax", "Flatten", "Reshape", "Identity", "Constant",
            "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"),
    "cnn": ("Conv", "ConvTranspose", "BatchNormalization", "MaxPool", "AveragePool",
            "GlobalAveragePool", "Dropout", "Concat", "Pad"),
    "model-zoo": ("LRN", "Sum", "Transpose", "Unsqueeze", "ConstantOfShape"),
    "sequence": ("LSTM", "GRU", "RNN", "Shape", "Gather", "Slice", "Squeeze", "Expand",
                 "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "Sqrt", "Cast",
                 "Mod", "Erf", "Gelu", "Where", "Equal", "Split", "Pow", "Range", "Tile", "Clip",
                 "LeakyRelu", "Elu", "HardSigmoid", "Neg", "Exp", "Log", "Abs", "Min", "Max",
                 "ArgMax", "TopK", "Einsum"),
}  # fmt: skip
TIER_OF = {op: t for t, ops in TIERS.items() for op in ops}
CATEGORIES = {
    "OnnxBackendNodeModelTest": "node",
    "OnnxBackendSimpleModelTest": "simple",
    "OnnxBackendPyTorchConvertedModelTest": "pytorch-converted",
    "OnnxBackendPyTorchOperatorModelTest": "pytorch-operator",
    "OnnxBackendRealModelTest": "real (model zoo)",
}
XFAIL_FILE = Path(__file__).with_name("xfail.txt")


def read_xfail(path: Path = XFAIL_FILE) -> list[tuple[re.Pattern, str]]:
    """``pattern  # reason`` lines; the pattern matches the test name without ``_cpu``."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        pat, _, reason = line.partition("#")
        if pat.strip():
            out.append((re.compile(f"^{pat.strip()}$"), reason.strip()))
    return out


def op_types_by_test() -> dict[str, list[str]]:
    """Test name -> the op types of its model (Constant left out unless it is the only one)."""
    import onnx
    from onnx.backend.test.loader import load_model_tests

    out = {}
    for kind in ("node", "simple", "pytorch-converted", "pytorch-operator"):
        for t in load_model_tests(kind=kind):
            m = t.model
            path = os.path.join(t.model_dir, "model.onnx") if t.model_dir else None
            if m is None and path and os.path.exists(path):
                m = onnx.load(path, load_external_data=False)
            ops = list(dict.fromkeys(n.op_type for n in m.graph.node)) if m is not None else []
            out[t.name] = [o for o in ops if o != "Constant"] or ops
    return out


@dataclass
class Outcome:
    name: str
    category: str
    status: str  # passed, failed, skipped
    detail: str = ""
    seconds: float = 0.0


class _Collect(unittest.TestResult):
    def __init__(self, category_of: dict[str, str], verbose: bool):
        super().__init__()
        self.category_of, self.verbose = category_of, verbose
        self.outcomes: list[Outcome] = []
        self._t0 = 0.0

    def startTest(self, test):  # noqa: N802 - unittest's names
        super().startTest(test)
        self._t0 = time.perf_counter()

    def _add(self, test, status, detail=""):
        if not test._testMethodName.endswith("_cpu"):
            return  # the same test on a device we do not have (CUDA)
        name = test._testMethodName.removesuffix("_cpu")
        cat = self.category_of.get(type(test).__name__, type(test).__name__)
        dt = time.perf_counter() - self._t0
        self.outcomes.append(Outcome(name, cat, status, detail, dt))
        if self.verbose:
            print(f"{status:7s} {dt:6.2f}s {name} {detail[:100]}", flush=True)

    def addSuccess(self, test):  # noqa: N802
        self._add(test, "passed")

    def addFailure(self, test, err):  # noqa: N802
        self._add(test, "failed", _short(err))

    def addError(self, test, err):  # noqa: N802
        self._add(test, "failed", _short(err))

    def addSkip(self, test, reason):  # noqa: N802
        self._add(test, "skipped", reason)

    def addExpectedFailure(self, test, err):  # noqa: N802
        self._add(test, "failed", _short(err))

    def addUnexpectedSuccess(self, test):  # noqa: N802
        self._add(test, "passed")


def _short(err) -> str:
    exc = err[1]
    msg = str(exc).strip().splitlines()
    first = " | ".join(m.strip() for m in msg if m.strip())[:300]
    return f"{type(exc).__name__}: {first}"


def run(pattern: str | None = None, real: bool = True, verbose: bool = False) -> list[Outcome]:
    """Run the suite (or the tests whose name matches ``pattern``); returns one Outcome each."""
    with tempfile.TemporaryDirectory(prefix="bpcli-onnx-home-") as home:
        old = {k: os.environ.get(k) for k in ("ONNX_HOME", "ONNX_MODELS")}
        os.environ["ONNX_HOME"] = home
        os.environ.pop("ONNX_MODELS", None)
        try:
            return _run(pattern, real, verbose)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _run(pattern: str | None, real: bool, verbose: bool) -> list[Outcome]:
    import onnx.backend.test

    import bpcli.onnx.conformance.backend as backend

    warnings.filterwarnings("ignore")
    bt = onnx.backend.test.BackendTest(backend, __name__)
    if pattern:
        bt.include(pattern)
    if not real:
        bt.exclude(r"OnnxBackendRealModelTest|^test_(bvlc_alexnet|densenet121|inception_v1|"
                   r"inception_v2|resnet50|shufflenet|squeezenet|vgg19|zfnet512)_")  # fmt: skip
    suite = unittest.TestSuite()
    for case in bt.test_cases.values():
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    result = _Collect(CATEGORIES, verbose)
    suite.run(result)
    out = result.outcomes
    if not real:
        for o in out:
            if o.category.startswith("real") and o.status == "skipped":
                o.detail = "model-zoo test: left out (--no-real)"
    return out


@dataclass
class Report:
    outcomes: list[Outcome]
    ops: dict[str, list[str]]
    xfail: list[tuple[re.Pattern, str]] = field(default_factory=list)

    def expected(self, name: str) -> str | None:
        for pat, reason in self.xfail:
            if pat.match(name):
                return reason
        return None

    def tier(self, name: str) -> str:
        tiers = [TIER_OF.get(o, "other") for o in self.ops.get(name, [])]
        order = [*TIERS, "other"]
        return max(tiers, key=order.index) if tiers else "other"

    def render(self, failures: bool = False) -> str:
        lines = []
        tot = Counter(o.status for o in self.outcomes)
        lines.append(f"TOTAL: {tot['passed']} passed, {tot['failed']} failed, {tot['skipped']} "
                     f"skipped of {len(self.outcomes)}")  # fmt: skip
        lines.append("\nper category:")
        by_cat = defaultdict(Counter)
        for o in self.outcomes:
            by_cat[o.category][o.status] += 1
        for cat, c in by_cat.items():
            lines.append(f"  {cat:20s} {c['passed']:5d} passed {c['failed']:5d} failed "
                         f"{c['skipped']:5d} skipped")  # fmt: skip
        lines.append("\nper tier (node tests; a test counts in the highest tier of its ops):")
        by_tier = defaultdict(Counter)
        for o in self.outcomes:
            if o.category == "node":
                by_tier[self.tier(o.name)][o.status] += 1
        for t in [*TIERS, "other"]:
            c = by_tier[t]
            lines.append(f"  {t:12s} {c['passed']:5d} passed {c['failed']:5d} failed "
                         f"{c['skipped']:5d} skipped")  # fmt: skip
        lines.append("\nper op (node tests):")
        by_op = defaultdict(Counter)
        for o in self.outcomes:
            if o.category == "node":
                for op in self.ops.get(o.name, ["?"])[:1]:
                    by_op[op][o.status] += 1
        for op in sorted(by_op):
            c = by_op[op]
            lines.append(f"  {op:32s} {c['passed']:3d}/{sum(c.values()):3d} "
                         f"[{TIER_OF.get(op, '-')}]")  # fmt: skip
        unexpected = [
            o for o in self.outcomes if o.status == "failed" and not self.expected(o.name)
        ]
        fixed = [o for o in self.outcomes if o.status == "passed" and self.expected(o.name)]
        lines.append(f"\nunexpected failures: {len(unexpected)}; xfail now passing: {len(fixed)}")
        for o in unexpected if failures else unexpected[:40]:
            lines.append(f"  FAIL {o.name}: {o.detail}")
        for o in fixed[:40]:
            lines.append(f"  XPASS {o.name}")
        return "\n".join(lines)


def _reason(o: Outcome, ops: list[str]) -> str:
    from bpcli.onnx.importer.table import IMPORTERS

    missing = [op for op in ops if ("", op) not in IMPORTERS]
    low = o.detail.lower()
    if "unsupported node" in o.detail and missing:
        return "no importer for " + ", ".join(missing)
    if "unsupported node" in o.detail:
        return o.detail.rsplit("): ", 1)[-1][:120]
    if any(
        k in low or k in o.name.lower()
        for k in ("float16", "bfloat16", "float8", "nopython", "float4", "int4", "bf16", "fp16")
    ):
        return "narrow floats/ints: nodes compute in float32 and round once; " + o.detail[:80]
    if "string" in low or "tensor from ndarray" in low:
        return "string tensors are not supported"
    if "'list' object" in low:
        return "sequence/optional values are not supported"
    return o.detail.split(": ", 1)[-1][:120]


def write_xfail(outcomes: list[Outcome], ops: dict[str, list[str]], path: Path = XFAIL_FILE):
    """Rewrite the list from ``outcomes``; a reason written by hand (``# why: ...``) is kept
    for as long as its test still fails."""
    kept = {pat.pattern: why for pat, why in read_xfail(path) if why.startswith("why:")}
    lines = ["# Expected failures of `python -m bpcli.onnx.conformance.suite`: "
             "a test-name regex, a reason.",
             "# Regenerate with --write-xfail after a change (then review the diff); reasons",
             "# written by hand start with 'why:' and survive regeneration."]  # fmt: skip
    for o in sorted(outcomes, key=lambda o: o.name):
        if o.status == "failed":
            pat = re.escape(o.name)
            why = kept.get(f"^{pat}$") or _reason(o, ops.get(o.name, []))
            lines.append(f"{pat}  # {why}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bpcli.onnx.conformance.suite")
    ap.add_argument("-k", dest="pattern", help="regex on test names (default: all)")
    ap.add_argument("--tiers", action="store_true", help="only the node tests of the tier ops")
    ap.add_argument("--no-real", action="store_true", help="leave out the model-zoo CNNs")
    ap.add_argument("--failures", action="store_true", help="list every unexpected failure")
    ap.add_argument("--write-xfail", action="store_true", help="rewrite the xfail list")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    args = ap.parse_args(argv)
    ops = op_types_by_test()
    pattern = args.pattern
    if args.tiers:
        names = [n for n, o in ops.items() if o and all(x in TIER_OF for x in o)]
        pattern = "^(" + "|".join(re.escape(n) for n in names) + ")_cpu$"
    t0 = time.perf_counter()
    outcomes = run(pattern, not args.no_real, args.verbose)
    if pattern:
        outcomes = [o for o in outcomes if o.status != "skipped" or "include" not in o.detail]
    if args.write_xfail:
        write_xfail(outcomes, ops)
    report = Report(outcomes, ops, read_xfail())
    print(report.render(args.failures))
    print(f"\n{time.perf_counter() - t0:.1f} s")
    unexpected = [o for o in outcomes if o.status == "failed" and not report.expected(o.name)]
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
