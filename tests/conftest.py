"""Shared fixtures: fresh registries (in memory and on disk) and a minimal job config."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from joshreg import RunRegistry
from joshreg.testing.registries import FakeJobConfig

# The suite starts a few hundred Python processes (workers, CLI runs, races); each would compile
# joshreg from source again where the environment forbids byte-code caches (some containers set
# PYTHONDONTWRITEBYTECODE). Caching them (in the ignored __pycache__ folders) saves about a third
# of `just test-fast`. Set here, before pytest-xdist starts its workers, so they inherit it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# With no S3 keys set, joshreg asks AWS's credential chain (profiles, roles, instance profiles).
# Keep the suite to what each test sets: not this machine's ~/.aws, nor a cloud host's instance
# profile. Tests of the chain set its variables themselves.
_AWS_HOME = Path(__file__).parent / "no-aws-config"  # does not exist
os.environ["AWS_CONFIG_FILE"] = str(_AWS_HOME / "config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(_AWS_HOME / "credentials")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_name, None)

FakeConfig = FakeJobConfig  # the few attributes of joshpy's JobConfig that create_session reads


@pytest.fixture
def make_config() -> type[FakeConfig]:
    """The FakeConfig class, for tests that need a config with particular fields."""
    return FakeConfig


@pytest.fixture
def config() -> FakeConfig:
    return FakeConfig()


@pytest.fixture
def registry() -> Iterator[RunRegistry]:
    """A fresh in-memory registry (log and tables in memory)."""
    reg = RunRegistry(":memory:")
    yield reg
    reg.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sweep.duckdb"


@pytest.fixture
def dir_registry(db_path: Path) -> Iterator[RunRegistry]:
    """A fresh registry whose DuckDB file and event log live under tmp_path."""
    reg = RunRegistry(db_path)
    yield reg
    reg.close()


@pytest.fixture
def session(registry: RunRegistry, config: FakeConfig) -> str:
    """A session in ``registry``."""
    return registry.create_session(config, experiment_name="exp")


Register = Callable[..., str]


@pytest.fixture
def register(registry: RunRegistry, session: str) -> Register:
    """Register a config in ``session`` (or ``session_id=``) with the given parameters."""

    def _register(run_hash: str, /, session_id: str | None = None, **params: Any) -> str:
        registry.register_run(
            session_id or session, run_hash, "model.josh", f"config of {run_hash}", None, params
        )
        return run_hash

    return _register


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SeaweedFS on loopback for the whole session (per xdist worker), with a bucket
    ``sweeps``; tests keep apart by using their own prefix (``tmp_path.name``)."""
    from joshreg.testing.servers import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket("sweeps")
        yield server.endpoint


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on loopback for the whole session (per xdist worker), with a bucket
    ``sweeps``: a second, independent implementation. It needs signed requests (any key)."""
    from joshreg.testing.servers import moto

    with moto(tmp_path_factory.mktemp("moto")) as server:
        server.create_bucket("sweeps")
        yield server.endpoint


@pytest.fixture
def use_s3_server(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point this process at a test server by the environment, as a job script would: its
    endpoint and the key pair both servers take (``S3Server.environ``)."""
    from joshreg.testing.servers import S3Server

    def use(endpoint: str) -> None:
        for name, value in S3Server(endpoint).environ().items():
            monkeypatch.setenv(name, value)

    return use


@pytest.fixture(params=["seaweedfs", "moto"])
def each_s3_endpoint(request: pytest.FixtureRequest) -> str:
    """The endpoint of each S3 server in turn (bucket ``sweeps``): a test that takes it runs
    once against SeaweedFS and once against moto. Each server starts on first use only."""
    name = "s3_endpoint" if request.param == "seaweedfs" else "moto_endpoint"
    return request.getfixturevalue(name)
