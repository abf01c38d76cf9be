"""Selective scan: every CPU backend against the sequential reference, a hand-computed case, dtypes, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fsad.layers.native_scan import native_available
from fsad.layers.selective_scan import (
    BACKENDS,
    PURE_BACKENDS,
    default_chunk_size,
    mamba_ssm_available,
    resolve_backend,
    selective_scan,
)

NATIVE = pytest.param("native", marks=pytest.mark.skipif(not native_available(), reason="no C compiler"))
CPU_BACKENDS = [*PURE_BACKENDS, NATIVE]
FAST_BACKENDS = [name for name in CPU_BACKENDS if name != "sequential"]
LAYOUTS = ("invariant", "variable", "grouped")
BATCH, D, N, LENGTH, GROUPS, CHUNK = 2, 4, 3, 37, 2, 16  # L = 37 is not a multiple of the chunk


pytestmark = pytest.mark.usefixtures("single_thread")


def _bc(layout: str, gen: torch.Generator, length: int = LENGTH) -> torch.Tensor:
    shape = {"invariant": (D, N), "variable": (BATCH, N, length), "grouped": (BATCH, GROUPS, N, length)}[layout]
    return torch.randn(*shape, generator=gen)


def _inputs(b_layout: str, c_layout: str, seed: int = 0, length: int = LENGTH) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(BATCH, D, length, generator=gen),
        "delta": torch.randn(BATCH, D, length, generator=gen) * 0.5,
        "A": -torch.rand(D, N, generator=gen) * 2 - 0.1,
        "B": _bc(b_layout, gen, length),
        "C": _bc(c_layout, gen, length),
        "D": torch.randn(D, generator=gen),
        "z": torch.randn(BATCH, D, length, generator=gen),
        "delta_bias": torch.randn(D, generator=gen) * 0.3,
    }


def _run(backend: str, tensors: dict[str, torch.Tensor], *, use_z: bool, use_bias: bool, softplus: bool,
         last_state: bool, chunk_size: int | None = CHUNK) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Outputs and gradients of a fixed random linear functional of them."""
    leaves = {k: v.clone().requires_grad_() for k, v in tensors.items()}
    if not softplus:  # keep delta positive, as softplus would
        leaves["delta"] = (tensors["delta"].abs() + 0.05).requires_grad_()
    result = selective_scan(
        leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"], leaves["D"],
        z=leaves["z"] if use_z else None, delta_bias=leaves["delta_bias"] if use_bias else None,
        delta_softplus=softplus, return_last_state=last_state, backend=backend, chunk_size=chunk_size,
    )
    outputs = list(result) if last_state else [result]
    gen = torch.Generator().manual_seed(99)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outputs)
    loss.backward()
    grads = {k: v.grad for k, v in leaves.items() if v.grad is not None}
    return [o.detach() for o in outputs], grads


def _assert_matches_reference(backend: str, tensors: dict[str, torch.Tensor], **options: bool) -> None:
    outputs, grads = _run(backend, tensors, **options)
    ref_outputs, ref_grads = _run("sequential", tensors, **options)
    for out, ref in zip(outputs, ref_outputs):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], atol=1e-4, rtol=1e-4, msg=f"gradient of {name}")


# ----------------------------------------------------------------------------------------------------------------
# Backends against the reference
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(("b_layout", "c_layout"), list(itertools.product(LAYOUTS, LAYOUTS)))
def test_backend_matches_reference_all_layouts(backend: str, b_layout: str, c_layout: str) -> None:
    options = {"use_z": True, "use_bias": True, "softplus": True, "last_state": True}
    _assert_matches_reference(backend, _inputs(b_layout, c_layout), **options)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(("use_z", "use_bias", "softplus", "last_state"),
                         [(False, False, False, False), (True, False, False, True), (False, True, True, False)])
def test_backend_matches_reference_options(backend: str, use_z: bool, use_bias: bool, softplus: bool,
                                           last_state: bool) -> None:
    options = {"use_z": use_z, "use_bias": use_bias, "softplus": softplus, "last_state": last_state}
    _assert_matches_reference(backend, _inputs("variable", "grouped", seed=1), **options)


@pytest.mark.parametrize("chunk_size", [1, 5, 36, 37, 64, None])
def test_chunked_independent_of_chunk_size(chunk_size: int | None) -> None:
    options = {"use_z": False, "use_bias": True, "softplus": True, "last_state": True}
    tensors = _inputs("grouped", "variable", seed=2)
    outputs, grads = _run("chunked", tensors, chunk_size=chunk_size, **options)
    ref_outputs, ref_grads = _run("sequential", tensors, **options)
    for out, ref in zip(outputs, ref_outputs):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layouts", [("variable", "variable"), ("invariant", "grouped")])
def test_chunked_backward_gradcheck(layouts: tuple[str, str]) -> None:
    """The hand-written backward of ``chunked`` against finite differences (float64, several chunks)."""
    tensors = {k: v[..., :7] if v.dim() >= 3 else v for k, v in _inputs(*layouts, seed=3).items()}
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    leaves = [tensors[k].double().requires_grad_() for k in names]

    def fn(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kwargs = dict(zip(names, args))
        return selective_scan(**kwargs, delta_softplus=True, return_last_state=True, backend="chunked", chunk_size=3)

    assert torch.autograd.gradcheck(fn, leaves, atol=1e-6, rtol=1e-5)


def test_decay_checkpoint_matches() -> None:
    tensors = _inputs("variable", "variable", seed=4)
    args = [tensors[k] for k in ("u", "delta", "A", "B", "C", "D")]
    leaves = [a.clone().requires_grad_() for a in args]
    out = selective_scan(*leaves, delta_softplus=True, backend="decay", chunk_size=8, checkpoint=True)
    out.sum().backward()
    ref_leaves = [a.clone().requires_grad_() for a in args]
    ref = selective_scan(*ref_leaves, delta_softplus=True, backend="sequential")
    ref.sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for leaf, ref_leaf in zip(leaves, ref_leaves):
        torch.testing.assert_close(leaf.grad, ref_leaf.grad, atol=1e-4, rtol=1e-4)


def test_long_decay_is_stable() -> None:
    """Large |delta A| (decays underflow to 0 within a chunk): no inf/nan, same as the reference."""
    tensors = _inputs("variable", "variable", seed=5)
    tensors["delta"] = tensors["delta"].abs() * 50 + 5
    tensors["A"] = tensors["A"] * 20
    ref = selective_scan(*(tensors[k] for k in ("u", "delta", "A", "B", "C", "D")), backend="sequential")
    for backend in [*PURE_BACKENDS[1:], *(["native"] if native_available() else [])]:
        out = selective_scan(*(tensors[k] for k in ("u", "delta", "A", "B", "C", "D")), backend=backend,
                             chunk_size=CHUNK)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Exact values and dtypes
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_hand_computed_case(backend: str) -> None:
    """d = n = 1, L = 3, delta = 0.5, A = -1, B = 2, C = 3, D = 0.25, u = (1, 2, 3).

    a = exp(-0.5), delta B u_t = u_t: h = (1, a + 2, a (a + 2) + 3), y = 3 h + 0.25 u.
    """
    a = math.exp(-0.5)
    h = [1.0, a + 2.0, a * (a + 2.0) + 3.0]
    expected = torch.tensor([[[3 * h_t + 0.25 * u_t for h_t, u_t in zip(h, (1.0, 2.0, 3.0))]]])
    u = torch.tensor([[[1.0, 2.0, 3.0]]])
    delta = torch.full((1, 1, 3), 0.5)
    A, D = torch.tensor([[-1.0]]), torch.tensor([0.25])
    invariant = (torch.tensor([[2.0]]), torch.tensor([[3.0]]))
    variable = (torch.full((1, 1, 3), 2.0), torch.full((1, 1, 3), 3.0))
    for B, C in (invariant, variable):
        out, last = selective_scan(u, delta, A, B, C, D, return_last_state=True, backend=backend, chunk_size=2)
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(last, torch.tensor([[[h[-1]]]]), atol=1e-6, rtol=1e-6)
    gated = selective_scan(u, delta, A, B, C, D, z=torch.zeros_like(u), backend=backend)
    torch.testing.assert_close(gated, torch.zeros_like(u))  # silu(0) = 0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_bfloat16_inputs(backend: str) -> None:
    """bf16 in, bf16 out; the scan runs in float32, so the only error is the final rounding to bf16
    (relative 2^-8): compare with the float32 result on the same (bf16-representable) inputs, rtol 2^-7."""
    tensors = _inputs("variable", "variable", seed=6)
    args16 = {k: v.to(torch.bfloat16) for k, v in tensors.items()}
    out = selective_scan(args16["u"], args16["delta"], args16["A"], args16["B"], args16["C"], args16["D"],
                         z=args16["z"], delta_bias=args16["delta_bias"], delta_softplus=True, backend=backend)
    assert out.dtype == torch.bfloat16
    args32 = {k: v.float() for k, v in args16.items()}
    ref = selective_scan(args32["u"], args32["delta"], args32["A"], args32["B"], args32["C"], args32["D"],
                         z=args32["z"], delta_bias=args32["delta_bias"], delta_softplus=True, backend="sequential")
    torch.testing.assert_close(out.float(), ref, rtol=2**-7, atol=1e-3)


@pytest.mark.parametrize("backend", ["chunked", NATIVE])
def test_float64_stays_float64(backend: str) -> None:
    tensors = {k: v.double() for k, v in _inputs("variable", "variable").items()}
    out, last = selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"], tensors["C"],
                               return_last_state=True, backend=backend)
    assert out.dtype == last.dtype == torch.float64


# ----------------------------------------------------------------------------------------------------------------
# Backend selection and errors
# ----------------------------------------------------------------------------------------------------------------


def test_unknown_backend_lists_names() -> None:
    tensors = _inputs("variable", "variable")
    with pytest.raises(ValueError, match="sequential, chunked, decay, parallel"):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"], tensors["C"], backend="nope")
    assert set(BACKENDS) == {"auto", "sequential", "chunked", "decay", "parallel", "native", "mamba_ssm"}


def test_auto_on_cpu_is_native_when_it_builds() -> None:
    assert resolve_backend("auto", torch.zeros(1)) == ("native" if native_available() else "chunked")


def test_mamba_ssm_on_cpu_is_a_clear_error() -> None:
    tensors = _inputs("variable", "variable")
    message = "mamba_ssm package" if not mamba_ssm_available() else "CUDA tensors"
    with pytest.raises(RuntimeError, match=message):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"], tensors["C"], backend="mamba_ssm")


def test_bad_shapes() -> None:
    tensors = _inputs("variable", "variable")
    with pytest.raises(ValueError, match="B must be"):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"][:, :, :5], tensors["C"])
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"][:2], tensors["B"], tensors["C"])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize(("name", "message"), [("D", r"D must be \(4,\)"), ("delta_bias", r"delta_bias must be \(4,\)"),
                                               ("z", r"z must be \(2, 4, 37\)")])
def test_optional_inputs_are_checked_before_a_kernel_runs(backend: str, name: str, message: str) -> None:
    """The native kernel reads D, z and the step bias at the offsets of u's shape: a wrong shape is a ValueError
    (it used to be read past its end)."""
    tensors = _inputs("variable", "variable")
    optional = {"D": tensors["D"], "z": tensors["z"], "delta_bias": tensors["delta_bias"]}
    optional[name] = optional[name][..., :1]
    with pytest.raises(ValueError, match=message):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"], tensors["C"], backend=backend,
                       **optional)


def test_inputs_on_another_device_are_a_clear_error() -> None:
    tensors = _inputs("variable", "variable")
    with pytest.raises(ValueError, match="C is on meta, u on cpu"):
        selective_scan(tensors["u"], tensors["delta"], tensors["A"], tensors["B"], tensors["C"].to("meta"))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_one_step_gives_a_zero_gradient_of_a(backend: str) -> None:
    """With one step no decay is applied: A's gradient is zero, on every backend (parallel used to drop A from the
    graph, so autograd.grad failed)."""
    tensors = _inputs("variable", "variable", length=1)
    A = tensors["A"].clone().requires_grad_()
    out = selective_scan(tensors["u"], tensors["delta"], A, tensors["B"], tensors["C"], backend=backend)
    assert torch.equal(torch.autograd.grad(out.sum(), A)[0], torch.zeros_like(A))


def test_default_chunk_size() -> None:
    assert default_chunk_size(32, 128, 16, 1000) == 16  # 16 * 65536 = 2^20 state elements
    assert default_chunk_size(1, 4, 4, 10_000) == 256  # capped
    assert default_chunk_size(1, 4, 4, 37) == 64  # never much longer than the sequence
    assert default_chunk_size(512, 512, 64, 100) == 8  # floor


# ----------------------------------------------------------------------------------------------------------------
# CUDA kernel (only where mamba_ssm and a GPU are present)
# ----------------------------------------------------------------------------------------------------------------


def test_mamba_ssm_kernel_matches_reference() -> None:
    pytest.importorskip("mamba_ssm")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    for b_layout, c_layout in (("variable", "variable"), ("grouped", "grouped"), ("invariant", "variable")):
        tensors = {k: v.cuda() for k, v in _inputs(b_layout, c_layout, seed=7).items()}
        kwargs = {"z": tensors["z"], "delta_bias": tensors["delta_bias"], "delta_softplus": True,
                  "return_last_state": True}
        args = [tensors[k] for k in ("u", "delta", "A", "B", "C", "D")]
        out, last = selective_scan(*args, backend="mamba_ssm", **kwargs)
        ref, ref_last = selective_scan(*args, backend="sequential", **kwargs)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(last, ref_last, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_chunked_compiled_matches_reference() -> None:
    """``compile=True`` (torch.compile of the chunk functions; compiles for tens of seconds, hence slow)."""
    pytest.importorskip("torch._inductor")
    options = {"use_z": True, "use_bias": True, "softplus": True, "last_state": True}
    for layouts in (("variable", "grouped"), ("invariant", "variable")):
        tensors = _inputs(*layouts, seed=8)
        leaves = {k: v.clone().requires_grad_() for k, v in tensors.items()}
        out, last = selective_scan(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"], leaves["D"],
                                   z=leaves["z"], delta_bias=leaves["delta_bias"], delta_softplus=True,
                                   return_last_state=True, backend="chunked", chunk_size=CHUNK, compile=True)
        gen = torch.Generator().manual_seed(99)
        loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in (out, last))
        loss.backward()
        ref_outputs, ref_grads = _run("sequential", tensors, **options)
        torch.testing.assert_close(out.detach(), ref_outputs[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(last.detach(), ref_outputs[1], atol=1e-5, rtol=1e-5)
        for name, grad in ref_grads.items():
            torch.testing.assert_close(leaves[name].grad, grad, atol=1e-4, rtol=1e-4, msg=f"gradient of {name}")
