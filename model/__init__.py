"""fusionserve's Python side: model, synthetic data, tokenizer, training, export."""
import os

# OpenBLAS's own threads fight torch's intra-op threads (2x slower here, see
# DESIGN.md); the variable only works if set before torch loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Idle OpenMP threads sleep instead of spinning, so training shares the
# 2 cores politely with the C++ build (same wall time, half the CPU here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
