"""Where the index lives: one interface (index/stores/base.py), one file per backend.

``embedded`` (the default): a folder with a manifest, FAISS and SQLite files per generation.
``postgres``: PostgreSQL with pgvector, chosen by NEWSBOT_DATABASE_URL (docs/SCALING.md).
"""

from __future__ import annotations

from ..config import Settings
from .base import Reader, SearchFilter, Store
from .build import BuildReport, Changes, build_index, update_index

__all__ = ["BuildReport", "Changes", "Reader", "SearchFilter", "Store", "build_index", "open_store", "update_index"]


def open_store(settings: Settings) -> Store:
    """The store the settings configure (connections are opened lazily, on first use)."""
    if settings.uses_database:
        from .postgres import PostgresStore

        return PostgresStore.from_settings(settings)
    from .embedded import EmbeddedStore

    return EmbeddedStore(settings.index_dir, corpus_dir=settings.corpus_dir, nprobe=settings.nprobe)
