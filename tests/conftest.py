"""Shared pytest fixtures: the replayable seed every random test prints."""

from __future__ import annotations

import os
import random

import pytest


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help="replay random tests with this seed (default: $MXUGEN_SEED or random)")


@pytest.fixture
def seed(request) -> int:
    """Random seed for one test; printed so a failure can be replayed with --seed."""
    chosen = request.config.getoption("--seed")
    if chosen is None:
        chosen = int(os.environ.get("MXUGEN_SEED", random.randrange(1 << 31)))
    print(f"random seed {chosen} (replay: pytest --seed {chosen} {request.node.nodeid})")
    return chosen
