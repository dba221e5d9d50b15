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


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance shared by the Ray tests of a session."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
