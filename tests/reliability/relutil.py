"""Helpers shared by the reliability tests: corpora, answer fingerprints, the rebuild driver."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DRIVER = HERE / "rebuild_driver.py"
PYTHON = sys.executable

#: Articles of the first build: distinct topics, so each question has one right article.
TOPICS = {
    "port": ("Port strike", "Dock workers at the harbour walked out on Monday over pay. The strike closed three "
             "container terminals. Shipping lines diverted twelve vessels to Rotterdam. Union leaders said "
             "talks would resume on Thursday."),
    "bakery": ("Bakery prize", "A village bakery won the national bread award this spring. Its sourdough loaf "
               "impressed the judges with a crisp crust. The baker has run the shop for thirty years. Queues now "
               "form before dawn."),
    "ferry": ("Ferry cancelled", "The island ferry was cancelled because of thick fog. Passengers waited four hours "
              "at the pier. The operator promised refunds for every ticket. Fog is expected to lift by Sunday."),
    "museum": ("Museum reopens", "The city museum reopened after a two year renovation. A new glass roof now covers "
               "the main hall. Entry stays free for children under twelve. The dinosaur skeleton returned to its "
               "old place."),
    "election": ("Mayor elected", "Maria Lopez was elected mayor with 54 percent of the vote. Turnout reached a record "
                 "high in the northern districts. She promised cheaper buses and more parks. Her rival conceded "
                 "before midnight."),
    "storm": ("Storm damage", "A winter storm knocked down power lines across the valley. Nine thousand homes lost "
              "electricity overnight. Crews restored most connections by Tuesday evening. Schools stayed closed for "
              "two days."),
    "satellite": ("Satellite launch", "The weather satellite reached orbit on its second attempt. Engineers fixed a "
                  "faulty valve after the first launch was scrubbed. The craft will map sea temperatures for ten "
                  "years. Its first images arrive next month."),
    "library": ("Library fines", "The public library abolished late fines for all borrowers. Returns of overdue "
                "books rose by a third within weeks. Staff said more families signed up for cards. The council "
                "covered the lost income."),
}

QUESTIONS = [
    "Why did the dock workers strike?",
    "Which bakery won the bread award?",
    "Why was the island ferry cancelled?",
    "Who was elected mayor?",
    "How many homes lost electricity in the storm?",
    "What will the weather satellite map?",
    "What happened to library late fines?",
    "When did the museum reopen?",
]


def md(title: str, body: str, **meta: str) -> str:
    extra = "".join(f"{k}: {v}\n" for k, v in meta.items())
    return f"---\ntitle: {title}\n{extra}---\n{body}\n"


def write_corpus(folder: Path, files: dict[str, str]) -> Path:
    """Make ``folder`` hold exactly ``files`` (name -> text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def corpus_v1() -> dict[str, str]:
    return {f"{k}.md": md(t, b, source="Daily Test") for k, (t, b) in TOPICS.items()}


_WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "granite", "harbor", "indigo", "juniper", "kelp", "lagoon", "meadow", "nickel", "orchid", "quartz", "reef", "saffron", "tundra", "umber", "violet", "willow", "xenon", "yarrow", "zinc"]


def bulk_article(n: int, sentences: int, seed: int) -> str:
    """An article of ``sentences`` distinct sentences (distinct texts are embedded one by one)."""
    rng = random.Random(seed)
    lines = []
    for i in range(sentences):
        a, b, c = rng.sample(_WORDS, 3)
        lines.append(f"Survey {n} item {i} recorded {a} and {b} levels near the {c} station.")
    # Paragraphs of four sentences, as a news site would print them.
    paras = [" ".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
    return md(f"Field survey {n}", "\n\n".join(paras), source="Survey Office")


def corpus_v2() -> dict[str, str]:
    """v1 with one article edited, one removed, and ~1,700 new sentences in five articles.

    Enough new sentences for four embedding chunks (512 each), so a kill can land between chunks.
    """
    files = corpus_v1()
    files["port.md"] = files["port.md"].replace("twelve vessels", "fifteen vessels")
    del files["library.md"]
    for n in range(5):
        files[f"survey{n}.md"] = bulk_article(n, 340, seed=n)
    return files


@dataclass(frozen=True)
class Reply:
    """What an index answers to one question, in a comparable form."""

    question: str
    quotes: tuple[tuple[str, str, int, int], ...]  # (text, article id, start, end)
    titles: tuple[str, ...]


def answers_of(index_dir: Path, embedder: object, questions: list[str] = QUESTIONS) -> tuple[int, list[Reply]]:
    """(generation, replies) of the index in ``index_dir``; raises when it cannot be loaded."""
    from index.answer import Answerer
    from index.stores.embedded import Snapshot

    snap = Snapshot.open(index_dir, embedder)  # type: ignore[arg-type]
    try:
        answerer = Answerer(snap, embedder, threshold=0.0)  # type: ignore[arg-type]
        out = []
        for q in questions:
            a = answerer.answer(q)
            out.append(Reply(q, tuple((x.text, x.article_id, x.start, x.end) for x in a.quotes),
                             tuple(c.title for c in a.citations)))
        return int(snap.manifest["generation"]), out
    finally:
        snap.close()


def run_driver(cli_args: list[str], *, kill_at: str | None = None, log: Path | None = None,
               hold_at: str | None = None, hold_file: Path | None = None, release_file: Path | None = None,
               timeout: float = 60.0, background: bool = False, input: str | None = None) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Run the rebuild driver (see rebuild_driver.py) as a real process."""
    cmd = [PYTHON, str(DRIVER)]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    if log:
        cmd += ["--log", str(log)]
    if hold_at:
        cmd += ["--hold-at", hold_at, "--hold-file", str(hold_file), "--release-file", str(release_file)]
    cmd += ["--", *cli_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEWSBOT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    if background:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
                          input=input)


def stray_files(index_dir: Path) -> list[str]:
    """Files a finished rebuild should not leave behind (temporary files of crashed builds)."""
    return sorted(p.name for p in index_dir.iterdir() if p.name.endswith(".tmp"))


# -- the real bot process, with the stall probe --------------------------------------------------------

PROBE = HERE / "bot_probe.py"
READY_LINE = "newsbot ready as"


class ProbedBot:
    """``python tests/reliability/bot_probe.py`` (the real ``bot.__main__.main``) against a fake Discord.

    Settings come only from the environment and an env file, as in production; output goes to a log
    file (a pipe could fill up and block the bot).
    """

    def __init__(self, env: dict[str, str], workdir: Path, *, env_file_text: str = "") -> None:
        self.env = env
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env_file = workdir / "bot.env"
        self.env_file.write_text(env_file_text, encoding="utf-8")
        self.log_path = workdir / "bot.log"
        self.stats_path = workdir / "probe.json"
        self.env.setdefault("PROBE_OUT", str(self.stats_path))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProbedBot:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([PYTHON, str(PROBE), "--env-file", str(self.env_file)], cwd=ROOT,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, fake, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
        import time

        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the bot exited with {self.proc.returncode}:\n{self.output[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready within {timeout:.0f} s:\n{self.output[-4000:]}")
            time.sleep(0.1)
        fake.wait_until(lambda f: f.core.commands.by_scope.get(f.ids.guild_id) or f.core.commands.by_scope.get(None),
                        20, "command sync")

    def stop(self, timeout: float = 30.0) -> int | None:
        import signal as _signal

        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def stats(self) -> dict:  # type: ignore[type-arg]
        import json

        return json.loads(self.stats_path.read_text(encoding="utf-8")) if self.stats_path.exists() else {}


def bot_env(fake, *, index_dir: Path, workdir: Path, cooldown: float = 5.0, hashing: bool = False,  # type: ignore[no-untyped-def]
            guild: bool = True, token_in_env: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The bot's environment: the fake's endpoints (and token), the index, a feedback database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEWSBOT_", "PROBE_"))}
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
        "NEWSBOT_INDEX_DIR": str(index_dir), "NEWSBOT_FEEDBACK_DB": str(workdir / "feedback.sqlite3"),
        "NEWSBOT_CORPUS_DIR": str(workdir / "corpus"),  # feeds and fetched articles: never the project's
        "NEWSBOT_COOLDOWN_SECONDS": str(cooldown), "NEWSBOT_LOG_LEVEL": "INFO",
    })
    env.update(fake.env(token_var="DISCORD_TOKEN" if token_in_env else None,
                        guild_var="DISCORD_GUILD_ID" if guild else None))
    if hashing:
        env["PROBE_HASHING"] = "1"
    env.update(extra or {})
    return env
