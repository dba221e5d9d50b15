import os
import tempfile
from pathlib import Path

import pytest

# Keep test runs from writing index/catalog caches into the user's home.
os.environ.setdefault("WEBSHOP_RL_CACHE", tempfile.mkdtemp(prefix="webshop-rl-test-cache-"))

FIXTURES = Path(__file__).parent / "envs" / "fixtures"


@pytest.fixture(scope="session")
def fixture_catalog():
    from envs import Catalog

    return Catalog.from_dir(FIXTURES)
