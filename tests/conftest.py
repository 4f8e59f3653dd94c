import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session uses its own note cache, never the user's."""
    if "AUDIOSYM_TEST_CACHE" not in os.environ:
        os.environ["AUDIOSYM_TEST_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("AUDIOSYM_CACHE", os.environ["AUDIOSYM_TEST_CACHE"])
