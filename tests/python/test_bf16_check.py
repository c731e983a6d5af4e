"""The export-time bf16 check on the committed bundle, and the precision
export.py pins."""
import os

import numpy as np

from model import bf16_check, export
from model.config_proto import model_config_pb2

BUNDLE = export.DEFAULT_OUT


def test_committed_bundle_keeps_its_answers_in_bf16():
    result = bf16_check.check_bf16(os.path.join(BUNDLE, "model.pt"),
                                   os.path.join(BUNDLE, "vocab.txt"), samples=1000)
    assert result.ok, result.summary()
    assert 0 < result.max_probability_delta  # bf16 really ran


def test_the_bundle_is_pinned_to_fp32():
    pb2 = model_config_pb2()
    mean, std = np.zeros(16), np.ones(16)
    assert export.build_config(mean, std).runtime.precision == \
        pb2.RuntimeConfig.PRECISION_FP32


def test_check_limits():
    ok = bf16_check.Bf16Check(10, 0.009, 0.90, 0.9015)
    assert ok.ok
    assert not bf16_check.Bf16Check(10, 0.011, 0.90, 0.90).ok
    assert not bf16_check.Bf16Check(10, 0.001, 0.90, 0.8975).ok
    assert "OFF" in bf16_check.Bf16Check(10, 0.011, 0.90, 0.90).summary()
