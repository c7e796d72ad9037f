"""Shared test configuration.

Hypothesis runs derandomized (the same examples on every run) unless
HYPOTHESIS_PROFILE=explore is set, so CI is reproducible while a developer can still
search for new counterexamples.
"""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("explore", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_default_dtype(torch.float32)

# One intra-op thread per test process: pytest-xdist already runs one worker per core,
# and with more threads than free cores OpenMP's barrier turns a microsecond matrix
# product into tens of milliseconds.
torch.set_num_threads(1)
