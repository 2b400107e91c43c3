"""newsbot's exceptions. Messages say what happened and what to do about it."""

from __future__ import annotations


class NewsbotError(Exception):
    """Base class of every error newsbot raises on purpose."""


class ConfigError(NewsbotError):
    """A setting is missing or invalid."""


class CorpusError(NewsbotError):
    """The corpus folder cannot be read at all (single bad files are warnings, not errors)."""


class ModelError(NewsbotError):
    """The embedding model cannot be found, loaded or verified."""


class IndexNotFoundError(NewsbotError):
    """There is no index where one was expected."""


class IndexMismatchError(NewsbotError):
    """The index exists but cannot be used as it is (schema, model, counts, damage)."""


class IndexLockedError(NewsbotError):
    """Another rebuild holds the index lock."""


class QuestionError(NewsbotError):
    """The question cannot be answered as asked (empty, too long, ...)."""


class StoreUnavailableError(NewsbotError):
    """The index's database cannot be reached (or has no connection free) right now: try again soon."""
