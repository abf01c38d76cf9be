"""``ordered_scan``: the 2-D mixers' scan (maps read in several orders, scanned, put back): a hand-computed case, the
native kernel against the pure backends' gather-scan-scatter on every input and gradient, its float64 gradients by
finite differences, shape errors, and the mixers built on it."""

from __future__ import annotations

import math

import pytest
import torch

from fsad.layers.native_scan import native_available
from fsad.layers.selective_scan import ordered_scan
from fsad.methods.wave_mambaad.hfss import DirectionalScan

native = pytest.mark.skipif(not native_available(), reason="no C compiler")


def _inputs(groups: int, rows: int, orders: int, length: int, d: int, n: int, dtype: torch.dtype = torch.float64,
            with_d: bool = True, with_bias: bool = True, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = groups * rows

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    projected = torch.randn(b, length, orders, 2 * n + 3, generator=g, dtype=dtype)  # B and C as strided views
    permutations = [torch.randperm(length, generator=g) for _ in range(2 * groups * orders)]
    return {
        "u": rand(b, length, d), "delta": rand(orders, b, length, d, scale=0.5),
        "A": (-torch.rand(orders * d, n, generator=g, dtype=dtype) - 0.2).requires_grad_(),
        "B": projected[..., 3:3 + n].requires_grad_(), "C": projected[..., 3 + n:].requires_grad_(),
        "D": rand(orders * d) if with_d else None, "delta_bias": rand(orders * d) if with_bias else None,
        "reads": torch.stack(permutations[:groups * orders]).view(groups, orders, length),
        "slots": torch.stack(permutations[groups * orders:]).view(groups, orders, length),
    }


def _run(inputs: dict, backend: str, softplus: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    out = ordered_scan(**inputs, delta_softplus=softplus, backend=backend)
    leaves = [v for v in inputs.values() if isinstance(v, torch.Tensor) and v.requires_grad]
    grad = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return out, list(torch.autograd.grad(out, leaves, grad))


@pytest.mark.parametrize("backend", ["sequential", pytest.param("native", marks=native)])
def test_hand_computed_case(backend: str) -> None:
    """One map of two positions read backwards (step 0 reads position 1), outputs in step order:
    h0 = dt1 B1 u1 = 6, y0 = C1 h0 + D u1 = 3.75; h1 = e^(dt0 A) h0 + dt0 B0 u0 = 6 e^-0.5 + 1,
    y1 = C0 h1 + D u0 = 18 e^-0.5 + 3.5."""
    t = {"dtype": torch.float64}
    out = ordered_scan(u=torch.tensor([[[2.0], [3.0]]], **t), delta=torch.tensor([[[[0.5], [1.0]]]], **t),
                       A=torch.tensor([[-1.0]], **t), B=torch.tensor([[[[1.0]], [[2.0]]]], **t),
                       C=torch.tensor([[[[3.0]], [[0.5]]]], **t), D=torch.tensor([0.25], **t),
                       reads=torch.tensor([[[1, 0]]]), slots=torch.tensor([[[0, 1]]]), backend=backend)
    torch.testing.assert_close(out.flatten(), torch.tensor([3.75, 18 * math.exp(-0.5) + 3.5], **t), rtol=1e-12,
                               atol=0)


@native
@pytest.mark.parametrize("shape", [(1, 2, 2, 7, 8, 4), (3, 2, 2, 9, 13, 6), (2, 1, 4, 16, 21, 16), (1, 3, 8, 5, 3, 17)],
                         ids=["one-block", "groups-and-tails", "four-orders", "narrow"])
@pytest.mark.parametrize("options", [(True, True, True), (False, False, False), (True, False, True)],
                         ids=["softplus-D-bias", "plain", "softplus-bias"])
def test_native_matches_the_pure_path_with_every_gradient(shape: tuple, options: tuple) -> None:
    """float64: outputs and the gradients of u, delta, A, B, C, D and the step bias equal the sequential scan of the
    gathered sequences, scattered back, to rounding; channel counts beyond the kernel's 8 lanes, state sizes beyond
    its blocks of 8, several groups with orders of their own, and slots unlike the reads included."""
    softplus, with_d, with_bias = options
    inputs = _inputs(*shape, with_d=with_d, with_bias=with_bias)
    out, grads = _run(inputs, "native", softplus)
    ref, ref_grads = _run(inputs, "sequential", softplus)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@native
def test_native_float32_matches_float64() -> None:
    inputs = _inputs(3, 2, 2, 33, 16, 16)
    single = {k: v.detach().float().requires_grad_(v.requires_grad) if v.is_floating_point() else v
              for k, v in inputs.items()}
    out, grads = _run(single, "native")
    ref, ref_grads = _run(inputs, "native")
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


@native
def test_native_gradcheck() -> None:
    inputs = _inputs(2, 1, 2, 5, 9, 3)
    names = [k for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def scan(*leaves: torch.Tensor) -> torch.Tensor:
        return ordered_scan(**{**inputs, **dict(zip(names, leaves))}, delta_softplus=True, backend="native")

    assert torch.autograd.gradcheck(scan, [inputs[k] for k in names])


def test_shapes_are_checked() -> None:
    inputs = _inputs(2, 1, 2, 5, 4, 3)
    with pytest.raises(ValueError, match=r"delta must be \(2, 2, 5, 4\)"):
        ordered_scan(**{**inputs, "delta": inputs["delta"][:1]})
    with pytest.raises(ValueError, match="G > 0 dividing b = 2"):
        ordered_scan(**{**inputs, "reads": inputs["reads"].repeat(3, 1, 1), "slots": inputs["slots"].repeat(3, 1, 1)})
    with pytest.raises(ValueError, match="G > 0"):
        ordered_scan(**{**inputs, "reads": inputs["reads"][:0], "slots": inputs["slots"][:0]})


BAD_INPUTS = [
    ("A", lambda x: x[:4], r"A must be \(8, 3\)"),
    ("B", lambda x: x[:, :, :1], r"B must be \(2, 5, 2, 3\)"),
    ("C", lambda x: x[..., :2], r"C must be \(2, 5, 2, 3\)"),
    ("D", lambda x: x[:1], r"D must be \(8,\)"),
    ("delta_bias", lambda x: x.view(2, 4), r"delta_bias must be \(8,\)"),
    ("u", lambda x: x.to(torch.complex128), "u must be a real floating-point tensor"),
    ("B", lambda x: x.to("meta"), "B is on meta, u on cpu"),
]


@pytest.mark.parametrize("backend", ["sequential", "chunked", pytest.param("native", marks=native)])
@pytest.mark.parametrize(("name", "change", "message"), BAD_INPUTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUTS)])
def test_every_input_is_checked_before_a_kernel_runs(backend: str, name: str, change, message: str) -> None:
    """The kernel reads A, B, C, D and the step bias at the offsets their shapes imply: a wrong shape, dtype or
    device is a ValueError naming the input, on every backend (it used to be a wrong answer or a crash)."""
    inputs = _inputs(2, 1, 2, 5, 4, 3)
    with pytest.raises(ValueError, match=message):
        ordered_scan(**{**inputs, name: change(inputs[name].detach())}, backend=backend)


@pytest.mark.parametrize("backend", ["sequential", "chunked", pytest.param("native", marks=native)])
@pytest.mark.parametrize("table", ["reads", "slots"])
@pytest.mark.parametrize("change", ["past_the_end", "negative", "huge", "repeated", "float", "bool"])
def test_index_tables_must_be_integer_permutations(backend: str, table: str, change: str) -> None:
    """An index the kernel would follow outside the map (or a repeated one, which the pure backends' inverse
    permutation cannot express) is a ValueError: it used to crash the process, corrupt memory or differ between
    backends."""
    inputs = _inputs(1, 2, 2, 6, 3, 2)
    bad = inputs[table].clone()
    if change in ("float", "bool"):
        bad = bad.to(torch.float32 if change == "float" else torch.bool)
    else:
        bad[0, 1, 2] = {"past_the_end": 6, "negative": -1, "huge": 10 ** 9, "repeated": int(bad[0, 1, 3])}[change]
    message = "int64 or int32" if change in ("float", "bool") else "permutation of 0 .. 5"
    with pytest.raises(ValueError, match=message):
        ordered_scan(**{**inputs, table: bad}, backend=backend)


def test_int32_tables_give_the_int64_result() -> None:
    inputs = _inputs(1, 2, 2, 6, 3, 2)
    as_int32 = {**inputs, "reads": inputs["reads"].int(), "slots": inputs["slots"].int()}
    torch.testing.assert_close(ordered_scan(**as_int32), ordered_scan(**inputs), rtol=0, atol=0)


@native
@pytest.mark.parametrize("decode", ["code", "paper"])
def test_hfss_native_equals_the_pure_path_with_parameter_gradients(decode: str) -> None:
    """Wave-MambaAD's HFSS (three bands, two directions each) through the kernel and through gather-scan-scatter:
    same maps and same gradients of every parameter, in float64."""
    torch.manual_seed(0)
    modules = {backend: DirectionalScan(16, d_state=4, decode=decode, scan_backend=backend).double()
               for backend in ("native", "sequential")}
    modules["sequential"].load_state_dict(modules["native"].state_dict())
    x = torch.randn(6, 4, 4, 16, dtype=torch.float64)
    results = {}
    for backend, module in modules.items():
        out = module(x)
        results[backend] = (out, torch.autograd.grad(out.square().sum(), list(module.parameters())))
    torch.testing.assert_close(results["native"][0], results["sequential"][0], rtol=1e-10, atol=1e-12)
    for got, want in zip(results["native"][1], results["sequential"][1]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
