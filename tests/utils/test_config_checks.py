"""Main numeric options are checked for type and range when the config is composed."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from fsad.utils.config_checks import ConfigValueError, NumericOption, check_options


@pytest.mark.parametrize("value, ok", [(3, True), (0, True), (-1, True), (-2, False), ("abc", False),
                                       (2.5, False), (True, False), (None, True)])
def test_integer_option(value, ok):
    option = NumericOption("trainer.max_epochs", int, -1, nullable=True)
    assert (option.problem(value) is None) == ok


@pytest.mark.parametrize("value, ok", [(1e-4, True), (1, True), (0, True), (-1e-3, False), ("1e-3x", False),
                                       (None, False)])
def test_float_option(value, ok):
    assert (NumericOption("model.lr", float, 0).problem(value) is None) == ok


def test_every_problem_is_named_at_once_and_absent_keys_are_skipped():
    cfg = OmegaConf.create({"trainer": {"max_epochs": "abc"}, "data": {"window": 0, "batch_size": 8},
                            "evaluation": {"spot": {"q": 2.0}}})
    with pytest.raises(ConfigValueError) as info:
        check_options(cfg)
    message = str(info.value)
    assert "trainer.max_epochs='abc': expected an integer >= -1 or null" in message
    assert "data.window=0: expected an integer >= 1" in message
    assert "evaluation.spot.q=2.0: expected a number in (0, 1)" in message
    assert "batch_size" not in message


def test_the_cuda_scan_backend_is_checked_before_training_where_it_cannot_run():
    from fsad.layers.selective_scan import mamba_ssm_available

    if mamba_ssm_available():
        pytest.skip("mamba_ssm runs here")
    for key in ("model.scan_backend", "model.decoder.scan_backend"):
        cfg = OmegaConf.create({})
        OmegaConf.update(cfg, key, "mamba_ssm")
        with pytest.raises(ConfigValueError, match=rf"{key}='mamba_ssm': needs the mamba_ssm package"):
            check_options(cfg)
    check_options(OmegaConf.create({"model": {"decoder": {"scan_backend": "native"}}}))
