"""Embedders: the ONNX backends agree with torch, export locally once, and check their files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index import embed
from index.config import Settings
from index.embed import HashingEmbedder, OnnxEmbedder, _read_st_layout, load_embedder, model_fingerprint
from index.errors import ModelError

SENTENCES = [
    "Dock workers at the port walked out on Monday over pay.",
    "A village bakery won the national bread award.",
    "Which country updated its nuclear doctrine this week?",
    "The strike closed three terminals.",
]


def test_hashing_embedder_unit_vectors() -> None:
    v = HashingEmbedder().encode(SENTENCES + [""])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)


def test_backend_is_part_of_the_fingerprint() -> None:
    fps = {b: model_fingerprint(Settings.from_env({"NEWSBOT_BACKEND": b})) for b in ("torch", "onnx", "onnx-int8")}
    assert len(set(fps.values())) == 3 and fps["onnx"].startswith(fps["torch"])


def test_unsupported_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    with pytest.raises(ModelError, match="NEWSBOT_BACKEND=torch"):
        _read_st_layout(tmp_path)


@pytest.fixture(scope="module")
def torch_embedder():  # type: ignore[no-untyped-def]
    """The reference backend (the default is onnx-int8: the real_embedder fixture)."""
    return load_embedder(Settings.from_env({"NEWSBOT_BACKEND": "torch"}))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.model
@pytest.mark.parametrize("backend,min_cos", [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_onnx_agrees_with_torch(backend: str, min_cos: float, torch_embedder, models_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Exported locally (no hub: the network is blocked in tests) and close to torch's vectors."""
    emb = load_embedder(Settings.from_env({"NEWSBOT_BACKEND": backend}), models_dir=models_dir)
    assert isinstance(emb, OnnxEmbedder)
    assert emb.dimension == torch_embedder.dimension
    assert emb.fingerprint == model_fingerprint(Settings.from_env({"NEWSBOT_BACKEND": backend}))
    got = emb.encode(SENTENCES, batch_size=3)
    ref = torch_embedder.encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    cos = (got * ref).sum(1)
    assert cos.min() > min_cos, cos
    assert emb.encode([]).shape == (0, emb.dimension)
    # A rebuild's bulk encode runs batches on one single-threaded session per core: every text
    # lands in its own row, as close to torch's vectors as the one-session path's.
    many = [f"{s} (version {i})" for i in range(12) for s in SENTENCES]
    assert len(many) > 2 * embed.BULK_BATCH
    bulk = emb.encode(many)
    assert emb._workers, "the bulk path was not taken"  # noqa: SLF001
    single = np.vstack([emb.encode([t]) for t in many])
    ref = torch_embedder.encode(many)
    assert (bulk * ref).sum(1).min() > min_cos and (bulk * single).sum(1).min() > min_cos


def test_onnx_export_is_checked_against_its_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A damaged or stale export is noticed and redone from the source weights (export faked: fast)."""
    from index import embed

    calls = []

    def fake_export(folder: Path, pooling: str, out: Path) -> None:
        calls.append(folder)
        out.write_bytes(b"graph-%d" % len(calls))

    monkeypatch.setattr(embed, "_export_onnx", fake_export)
    monkeypatch.setattr(embed, "_optimize_graph", lambda src, out, folder: False)
    monkeypatch.setattr(embed, "_quantize_int8", lambda src, out: out.write_bytes(src.read_bytes() + b"-int8"))
    folder, name, sha = embed.resolve_model(Settings.from_env({}))
    path = embed.ensure_onnx_model(folder, name, sha, "onnx", tmp_path)
    assert len(calls) == 1 and path.read_bytes() == b"graph-1"
    meta = json.loads((path.parent / "export.json").read_text())
    assert meta["source_sha256"] == sha and set(meta["files"]) == {"model.onnx", "model-int8.onnx"}
    # Loading again exports nothing; the int8 file is already there.
    assert embed.ensure_onnx_model(folder, name, sha, "onnx-int8", tmp_path).read_bytes() == b"graph-1-int8"
    assert len(calls) == 1
    # A damaged file is exported again.
    path.write_bytes(b"damaged")
    caplog.set_level("WARNING")
    embed.ensure_onnx_model(folder, name, sha, "onnx", tmp_path)
    assert len(calls) == 2 and "exporting again" in caplog.text
    # Other source weights (another hash) get a folder of their own.
    other = embed.ensure_onnx_model(folder, name, "0" * 64, "onnx", tmp_path)
    assert other.parent != path.parent and len(calls) == 3
