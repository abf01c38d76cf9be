"""allocator=keep sets glibc's mallopt parameters; a wrong word is named before anything runs."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from fsad.utils.allocator import use_allocator
from fsad.utils.config_checks import ConfigValueError, check_options


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_is_applied_by_glibc_in_a_fresh_process():
    code = "from fsad.utils.allocator import use_allocator; print(use_allocator('system'), use_allocator('keep'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_an_unknown_allocator_is_named():
    with pytest.raises(ValueError, match="allocator='jemalloc': expected system or keep"):
        use_allocator("jemalloc")
    with pytest.raises(ConfigValueError, match="allocator='fast': expected system, keep"):
        check_options(OmegaConf.create({"allocator": "fast"}))
