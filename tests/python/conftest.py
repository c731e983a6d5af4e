"""Lets `pytest tests/python` import the `model` package from the repo root."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def pytest_configure(config):
    # Runs by default; `-m "not training"` skips the quick training run.
    config.addinivalue_line("markers", "training: trains a small model (~10 s, more on a busy machine)")
