"""Fixtures for integration tests that run the real server next to other
real programs (Prometheus) or drive its lifecycle (signals, readiness).

Reuses the end-to-end harness (tests/e2e/harness.py): stubs, server process.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return harness.call_or_fail(harness.generate_stubs,
                                str(tmp_path_factory.mktemp("stubs")))


@pytest.fixture(scope="session")
def golden():
    return harness.call_or_fail(harness.load_golden)
