"""The ``native`` CPU kernel: gradients by finite differences, thread partials, building, fallbacks.

Its agreement with the sequential reference (every B/C layout, options, dtypes) is tested with the other backends
in ``test_selective_scan.py``.
"""

from __future__ import annotations

import logging

import pytest
import torch

from fsad.layers import native_scan
from fsad.layers.native_scan import native_available
from fsad.layers.selective_scan import resolve_backend, selective_scan

pytestmark = pytest.mark.skipif(not native_available(), reason="no C compiler")

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _inputs(b_shape: tuple[int, ...], c_shape: tuple[int, ...], batch: int = 2, d: int = 4, n: int = 3,
            length: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"u": (batch, d, length), "delta": (batch, d, length), "A": (d, n), "B": b_shape, "C": c_shape,
              "D": (d,), "z": (batch, d, length), "delta_bias": (d,)}
    tensors = {k: torch.randn(*s, generator=gen, dtype=dtype) for k, s in shapes.items()}
    tensors["A"] = -tensors["A"].abs() - 0.1
    return tensors


@pytest.fixture
def fresh_library(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """An empty cache folder and no loaded library; the original library is restored afterwards."""
    monkeypatch.setenv("FSAD_CACHE_DIR", str(tmp_path))
    native_scan._library.cache_clear()
    yield tmp_path
    native_scan._library.cache_clear()


@pytest.mark.parametrize(("b_shape", "c_shape"), [((2, 3, 6), (2, 2, 3, 6)), ((4, 3), (2, 3, 6))])
def test_gradcheck_float64(b_shape: tuple[int, ...], c_shape: tuple[int, ...]) -> None:
    """Every input's gradient against finite differences: D skip, z gate, delta bias and softplus, last state."""
    tensors = _inputs(b_shape, c_shape)
    leaves = [tensors[k].requires_grad_() for k in NAMES]

    def fn(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return selective_scan(**dict(zip(NAMES, args)), delta_softplus=True, return_last_state=True,
                              backend="native")

    assert torch.autograd.gradcheck(fn, leaves, atol=1e-8, rtol=1e-6)


def test_two_threads_equal_one() -> None:
    """Shared B (one per channel, summed over threads' partials) and grouped C split over two threads give the
    single-thread result: per-thread gradient partials add up, no element is written by two threads."""
    tensors = _inputs((8, 5), (6, 2, 5, 50), batch=6, d=8, n=5, length=50, seed=1, dtype=torch.float32)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            leaves = {k: v.clone().requires_grad_() for k, v in tensors.items()}
            out, last = selective_scan(**leaves, delta_softplus=True, return_last_state=True, backend="native")
            (out.square().sum() + last.sum()).backward()
            results.append([out, last, *(leaves[k].grad for k in NAMES)])
    finally:
        torch.set_num_threads(previous)
    for one, two in zip(*results):
        torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)


def test_exp_extremes_match_reference() -> None:
    """Steps whose exp(delta A) underflows (delta A down to -4000) or is exactly 1 (delta = 0)."""
    tensors = _inputs((2, 3, 6), (2, 3, 6), dtype=torch.float32)
    tensors["delta"] = torch.tensor([0.0, 1e-3, 1.0, 30.0, 400.0, 0.0]).expand(2, 4, 6).contiguous()
    tensors["A"] = tensors["A"] * 10
    args = [tensors[k] for k in ("u", "delta", "A", "B", "C", "D")]
    out = selective_scan(*args, backend="native")
    ref = selective_scan(*args, backend="sequential")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_builds_once_into_the_cache(fresh_library) -> None:
    assert native_available()
    built = list(fresh_library.glob("selective_scan-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native_scan._library.cache_clear()
    assert native_available()  # loaded, not rebuilt
    assert built[0].stat().st_mtime_ns == stamp
    assert not [p for p in fresh_library.iterdir() if p.is_dir()]  # no build folder left behind


def test_portable_single_threaded_build(fresh_library, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last fallback (no -march=native, no OpenMP) builds and computes the same scan."""
    monkeypatch.setattr(native_scan, "_FLAG_SETS", (native_scan._PORTABLE_FLAGS,))
    tensors = _inputs((2, 3, 6), (2, 3, 6), dtype=torch.float32)
    out = selective_scan(**tensors, delta_softplus=True, backend="native")
    ref = selective_scan(**tensors, delta_softplus=True, backend="sequential")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_without_compiler_auto_falls_back(fresh_library, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    with caplog.at_level(logging.WARNING, logger="fsad.layers.native_scan"):
        assert not native_available()
    assert "no C compiler 'no-such-compiler'" in caplog.text
    assert resolve_backend("auto", torch.zeros(1)) == "chunked"
    with pytest.raises(RuntimeError, match="backend 'native' needs a C compiler"):
        resolve_backend("native")


def test_compile_error_is_reported(fresh_library, monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(native_scan, "_FLAG_SETS", (("-fno-such-flag",),))
    with caplog.at_level(logging.WARNING, logger="fsad.layers.native_scan"):
        assert not native_available()
    assert "did not compile" in caplog.text and "no-such-flag" in caplog.text


def test_switched_off_by_environment(fresh_library, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FSAD_NATIVE_SCAN", "0")
    with caplog.at_level(logging.WARNING, logger="fsad.layers.native_scan"):
        assert not native_available()
    assert resolve_backend("auto", torch.zeros(1)) == "chunked"
    assert "FSAD_NATIVE_SCAN=0" in caplog.text


def test_library_that_does_not_load_falls_through(fresh_library, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A cached library that cannot be loaded (here: not a shared object) is skipped for the next flag set."""
    sources = {name: native_scan.resources.files("fsad.layers").joinpath(f"native/{name}").read_bytes()
               for name in native_scan._SOURCES}
    first = native_scan._FLAG_SETS[0]
    broken = fresh_library / f"selective_scan-{native_scan._build_key(sources, 'cc', first)}.so"
    broken.write_bytes(b"not a library")
    monkeypatch.setenv("CC", "cc")
    with caplog.at_level(logging.WARNING, logger="fsad.layers.native_scan"):
        assert native_available()
    assert "does not load" in caplog.text
