"""Runs the client binaries for the tests (imported by name: a module named
`conftest` would clash with the other test folders' conftest files)."""
import subprocess

import harness


def run(args, *, input_text=None, timeout=60):
    """Runs a binary; returns the CompletedProcess (text mode)."""
    return subprocess.run(args, input=input_text, capture_output=True, text=True,
                          timeout=timeout, cwd=harness.REPO_ROOT)
