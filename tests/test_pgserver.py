"""The PostgreSQL + pgvector test servers (tests/pgserver.py): pgvector 0.8 works, replicas stream
and can be held behind, and a server comes back at the same uri after a clean stop or a crash."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pgserver
import psycopg
import pytest
from pgserver import PgPair, PgServer
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector
from psycopg import errors
from psycopg_pool import ConnectionPool

pytestmark = pytest.mark.pg


def _connect(uri: str) -> psycopg.Connection:
    conn = psycopg.connect(uri, autocommit=True)
    register_vector(conn)
    return conn


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    server = pgserver.start_primary(tmp_path_factory.mktemp("pgown"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own_server(_module_server: PgServer) -> PgServer:
    """A primary of this module's own (not the session's pg_server), to stop and kill; running at the start."""
    _module_server.start()
    return _module_server


def test_vector_halfvec_and_iterative_scan_settings(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert version is not None and tuple(int(p) for p in version[0].split(".")[:2]) >= (0, 8)
        server_version = conn.execute("SHOW server_version_num").fetchone()
        assert server_version is not None and int(server_version[0]) >= 180000

        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3), half halfvec(3))")
        v = np.array([1.0, 2.0, 3.5], dtype=np.float32)
        conn.execute("INSERT INTO items VALUES (1, %s, %s)", (v, HalfVector(v)))
        row = conn.execute("SELECT embedding, half, embedding::halfvec(3) <=> half FROM items").fetchone()
        assert row is not None
        # pgvector-python 0.5 loads Vector / HalfVector objects (numpy arrays go in as they are).
        assert isinstance(row[0], Vector) and row[0].to_numpy().dtype == np.float32
        np.testing.assert_array_equal(row[0].to_numpy(), v)
        assert isinstance(row[1], HalfVector)
        np.testing.assert_array_equal(row[1].to_numpy(), v.astype(np.float16))
        assert row[2] == pytest.approx(0.0, abs=1e-6)

        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("relaxed_order",)
        conn.execute("SET hnsw.iterative_scan = strict_order")
        conn.execute("SET hnsw.max_scan_tuples = 5000")
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("SET hnsw.iterative_scan = sideways")

    # A pool registering the vector type on every connection it opens.
    with ConnectionPool(pg_url, min_size=2, max_size=2, configure=register_vector, open=True) as pool:
        for _ in range(3):
            with pool.connection() as conn:
                got = conn.execute("SELECT %s::vector", (v,)).fetchone()
                assert got is not None and isinstance(got[0], Vector)


def test_hnsw_index_answers_nearest_neighbours(pg_url: str) -> None:
    rng = np.random.default_rng(7)
    n, dim = 300, 16
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with _connect(pg_url) as conn:
        conn.execute(f"CREATE TABLE docs (id int PRIMARY KEY, category int NOT NULL, embedding vector({dim}) NOT NULL)")
        with conn.cursor().copy("COPY docs (id, category, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "vector"])
            for i, vec in enumerate(vectors):
                copy.write_row((i, i % 20, vec))
        # Built after the bulk load, as pgvector advises; also one on halfvec (half the size).
        conn.execute("CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_cosine_ops)")
        conn.execute(f"CREATE INDEX docs_hnsw_half ON docs USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops)")
        conn.execute("ANALYZE docs")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET hnsw.ef_search = 100")

        query = vectors[42]
        knn = "SELECT id FROM docs ORDER BY embedding <=> %s LIMIT 10"
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + knn, (query,)).fetchall())
        assert "docs_hnsw" in plan, plan
        got = [r[0] for r in conn.execute(knn, (query,)).fetchall()]
        exact = list(np.argsort(-(vectors @ query))[:10])
        assert got[0] == 42
        assert len(set(got) & set(exact)) >= 9, (got, exact)

        half_knn = f"SELECT id FROM docs ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10"
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + half_knn, (query,)).fetchall())
        assert "docs_hnsw_half" in plan, plan
        assert [r[0] for r in conn.execute(half_knn, (query,)).fetchall()][0] == 42

        # A selective filter: with iterative scans the index keeps going until LIMIT rows pass it.
        conn.execute("SET hnsw.ef_search = 10")
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        filtered = "SELECT id, category FROM docs WHERE category = 3 ORDER BY embedding <=> %s LIMIT 5"
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + filtered, (query,)).fetchall())
        assert "docs_hnsw" in plan, plan
        rows = conn.execute(filtered, (query,)).fetchall()
        assert len(rows) == 5 and {c for _, c in rows} == {3}


def test_replica_streams_rows_written_on_the_primary(pg_replica: PgPair) -> None:
    primary, replica = pg_replica
    assert replica.is_replica and not primary.is_replica
    assert replica.scalar("SELECT pg_is_in_recovery()") is True
    assert primary.scalar("SELECT pg_is_in_recovery()") is False
    assert primary.scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == 1

    uri = pgserver.create_database(primary, "streams")
    with _connect(uri) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, embedding vector(2))")
        conn.execute("INSERT INTO notes VALUES (1, %s)", (np.array([0.5, 0.25], dtype=np.float32),))
    pgserver.wait_replayed(primary, replica)

    with _connect(replica.uri_for("streams")) as conn:
        row = conn.execute("SELECT embedding FROM notes WHERE id = 1").fetchone()
        assert row is not None
        np.testing.assert_array_equal(row[0].to_numpy(), [0.5, 0.25])
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO notes VALUES (2, '[1,1]')")


def test_paused_replay_keeps_the_replica_behind(pg_replica: PgPair) -> None:
    primary, replica = pg_replica
    uri = pgserver.create_database(primary, "behind")
    with _connect(uri) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    pgserver.wait_replayed(primary, replica)

    def replica_ids() -> list[int]:
        with replica.connect("behind") as conn:
            return [r[0] for r in conn.execute("SELECT id FROM notes ORDER BY id").fetchall()]

    with pgserver.replay_paused(replica):
        with _connect(uri) as conn:
            conn.execute("INSERT INTO notes VALUES (1)")
        target = pgserver.current_lsn(primary)
        deadline = time.monotonic() + 10  # the WAL still arrives, it is only not applied
        while not replica.scalar("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (target,)):
            assert time.monotonic() < deadline, "the replica did not receive the WAL"
            time.sleep(0.01)
        assert pgserver.replay_state(replica) == "paused"
        assert replica_ids() == []
        with pytest.raises(TimeoutError):
            pgserver.wait_replayed(primary, replica, timeout=0.3)
    assert pgserver.replay_state(replica) == "not paused"
    pgserver.wait_replayed(primary, replica)
    assert replica_ids() == [1]


def test_stop_then_start_comes_back_at_the_same_uri(own_server: PgServer) -> None:
    uri = pgserver.create_database(own_server, "kept")
    with _connect(uri) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
    pid = own_server.pid

    own_server.stop()
    assert not own_server.is_running and own_server.pid is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=2)

    own_server.start()
    assert own_server.is_running and own_server.pid != pid
    assert own_server.uri_for("kept") == uri
    with _connect(uri) as conn:
        assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]
    assert "database system was shut down at" in own_server.log_text()


def test_kill_then_start_recovers_committed_rows(own_server: PgServer) -> None:
    uri = pgserver.create_database(own_server, "crash")
    conn = _connect(uri)
    conn.execute("CREATE TABLE t (id int, embedding vector(2))")
    conn.execute("INSERT INTO t VALUES (1, '[1,2]')")
    pid = own_server.pid
    assert pid is not None

    own_server.kill()
    assert not own_server.is_running
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")  # its backend went with the postmaster
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=2)

    own_server.start()
    assert "automatic recovery in progress" in own_server.log_text()
    with _connect(uri) as conn:
        assert conn.execute("SELECT id, embedding::text FROM t").fetchall() == [(1, "[1,2]")]


def test_missing_wheel_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pgserver.PgUnavailable, match="make install"):
        pgserver.bin_dir()
