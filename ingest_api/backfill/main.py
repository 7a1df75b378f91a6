"""Backfill: import past Eval360-V2 runs (`*_scores.yaml`, `*_grades.jsonl`) through the ingest API.

    python backfill.py --output-dir OUT/k2-think-v2/step-5000 --model-id k2-think-v2 --owner varad
    python backfill.py --output-dir OUT/k2-think-v2 --model-id k2-think-v2 --recursive --with-examples
    python backfill.py --output-dir OUT/gpt-4o --model-id gpt-4o --model-type baseline --dry-run

What it does (formats.md §1-4):

- Scores files are read with a strict line parser: every non-blank, non-comment line must be
  `"<metric name>": <number>`; integers, exponents (`1e-05`), `nan` and `inf` are numbers
  (`nan` is sent as NaN: "no value", the key is kept). Anything else fails that file, reported
  with its path and line number; the other files carry on. An empty file is skipped.
- The primary metric is the first score metric of the file (a spread figure such as
  `bootstrap_std (avg over N)` never is), unless `--primary-metric` names one.
- The training step comes from the checkpoint folder's name (naming.detect_step), never for
  `--model-type baseline`; `--training-step` overrides it.
- `sample_count` is the number of lines of the matching `_grades.jsonl`, when there is one.
- Each eval run id is derived from (model, canonical checkpoint, dataset), so running the same
  backfill again updates the same runs instead of adding new ones.
- Results go in batches through POST /api/ingest/eval-results (source "backfill"), the next batch
  parsed while one is sent (`--workers` for more in flight); with `--with-examples` each grades
  file becomes one POST /api/ingest/examples of up to 50,000 rows (example_idx = 0-based line
  number of the grades file).

Exit code: 0 when nothing failed, 1 when some file failed (or nothing was found), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import hashlib
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.ids import is_valid_id
from ..ingest import metrics as M
from ..ingest.naming import canonical_checkpoint_id, detect_step

log = logging.getLogger("eval360.backfill")

SCORES_SUFFIX = "_scores.yaml"
GRADES_SUFFIX = "_grades.jsonl"
PREVIEW_CHARS = 200
GROUND_TRUTH_CHARS = 2000
LABEL_CHARS = 500
MAX_EXAMPLES_PER_CALL = 50_000


# ---------------------------------------------------------------- scores files

class ParseError(ValueError):
    """A file that does not follow the format: path, 1-based line number (0: the whole file), reason."""

    def __init__(self, path: str | os.PathLike, line: int, message: str):
        super().__init__(message)
        self.path = str(path)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


# `"<metric name>": <value>` with an optional YAML comment after the value.
_SCORE_LINE = re.compile(r'^"((?:[^"\\]|\\.)*)"[ \t]*:[ \t]*(\S+)(?:[ \t]+#.*)?$')
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_SPECIAL = {"nan": math.nan, ".nan": math.nan, "+nan": math.nan, "-nan": math.nan,
            "inf": math.inf, "+inf": math.inf, ".inf": math.inf, "+.inf": math.inf,
            "infinity": math.inf, "+infinity": math.inf,
            "-inf": -math.inf, "-.inf": -math.inf, "-infinity": -math.inf}


def parse_number(text: str) -> float | None:
    """A YAML/JSON number as the graders write it (1, 0.5, 1e-05, nan, inf); None if it is not one."""
    if _NUMBER.match(text):
        return float(text)
    return _SPECIAL.get(text.lower())


# The common case in one regex: plain `"name": number` lines, nothing else (the general parser below
# decides everything else, and reports the line of an error).
_FAST_PAIR = r'"([^"\\\n\x00]{1,300})": ((?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)|nan|-?inf)\n'
_FAST_FILE = re.compile(f"(?:{_FAST_PAIR})+")
_FAST_PAIRS = re.compile(_FAST_PAIR)


def parse_scores(text: str, path: str | os.PathLike = "<scores>") -> dict[str, float]:
    """Metrics of one scores file, in file order. Raises ParseError on the first bad line."""
    if text and not text.endswith("\n"):
        text += "\n"
    if _FAST_FILE.fullmatch(text):
        pairs = _FAST_PAIRS.findall(text)
        fast = {k: float(v) for k, v in pairs}
        if len(fast) == len(pairs) <= 1000 and all(k.strip() for k in fast):
            return fast
    out: dict[str, float] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or (line == "---" and not out):
            continue
        m = _SCORE_LINE.match(line)
        if m is None:
            raise ParseError(path, lineno, f'expected `"<metric name>": <number>`, got {_clip(raw, 80)!r}')
        name = m.group(1)
        try:
            if "\\" in name:
                name = json.loads(f'"{name}"')
        except ValueError:
            why = f"bad escape in the metric name {_clip(m.group(1), 80)!r}"
            raise ParseError(path, lineno, why) from None
        if not name.strip() or "\x00" in name:
            raise ParseError(path, lineno, "empty metric name")
        if len(name) > 300:
            raise ParseError(path, lineno, "metric name longer than 300 characters")
        value = parse_number(m.group(2))
        if value is None:
            raise ParseError(path, lineno, f"value {_clip(m.group(2), 40)!r} of {name!r} is not a number")
        if name in out:
            raise ParseError(path, lineno, f"metric {name!r} appears twice")
        out[name] = value
    if len(out) > 1000:
        raise ParseError(path, 0, f"{len(out)} metrics; the API takes at most 1000 per result")
    return out


def read_scores(path: str | os.PathLike) -> dict[str, float]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParseError(path, line, "not UTF-8 text") from None
    return parse_scores(text, path)


def count_lines(path: str | os.PathLike) -> int:
    """Number of non-blank lines (= examples) of a grades file, without parsing it."""
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            if b"\n\n" in chunk or b"\n\r\n" in chunk or (last == b"\n" and chunk[:1] in (b"\n", b"\r")):
                break  # blank lines: count exactly below
            n += chunk.count(b"\n")
            last = chunk[-1:]
        else:
            return n + (last != b"\n")
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# ---------------------------------------------------------------- grades files -> example rows

def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n]


def _clean(text: str | None, n: int) -> str | None:
    if text is None:
        return None
    text = _clip(text, n)
    return text.replace("\x00", "") if "\x00" in text else text


def _as_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def _message_text(m: Any) -> str:
    if isinstance(m, dict):
        c = m.get("content")
        if isinstance(c, str):
            return c
        if isinstance(c, list):  # content parts: [{"type": "text", "text": ...}, ...]
            return "\n".join(p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict)
                             else "" for p in c)
        return "" if c is None else _as_text(c) or ""
    return m if isinstance(m, str) else _as_text(m) or ""


def prompt_text(rec: dict) -> str | None:
    """The prompt: `completion_input` (a string), else `chat_input` (messages, contents joined)."""
    ci = rec.get("completion_input")
    if isinstance(ci, str) and ci:
        return ci
    chat = rec.get("chat_input")
    if isinstance(chat, list) and chat:
        return "\n".join(_message_text(m) for m in chat)
    if isinstance(chat, str) and chat:
        return chat
    return _as_text(ci) if ci is not None else None


def picked_generation(rec: dict) -> str | None:
    gens = rec.get("generations")
    if not isinstance(gens, list) or not gens:
        return None
    i = rec.get("picked")
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(gens):
        i = 0
    g = gens[i]
    if isinstance(g, dict):
        g = g.get("text", g.get("content", g))
    return _as_text(g)


_EXC_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def error_tag(exc: Any) -> str:
    """A short tag for a failed row: the exception type (`TimeoutError: ...` -> `TimeoutError`)."""
    text = _as_text(exc) or "exception"
    first = text.strip().splitlines()[0] if text.strip() else "exception"
    m = _EXC_TYPE.match(first)
    return m.group(1) if m else _clip(first, 200)


def _grades(correct: Any) -> list[float] | None:
    if isinstance(correct, (bool, int, float)):
        correct = [correct]
    if not isinstance(correct, list):
        return None
    out = []
    for c in correct:
        if not isinstance(c, (bool, int, float)) or not 0 <= c <= 1:
            return None
        out.append(float(c))
    return out


def example_row(idx: int, rec: dict, path: Path | str = "<grades>", lineno: int = 0) -> dict:
    """One per-example row of POST /api/ingest/examples from one grades record."""
    exc = rec.get("exception")
    failed = exc is not None and exc != ""
    grades = [0.0] if failed else _grades(rec.get("correct"))
    if grades is None:
        got = _clip(repr(rec.get("correct")), 60)
        raise ParseError(path, lineno, f"`correct` must be a list of 0/1 grades, got {got}")
    tag = None
    if not grades:  # graded nothing: no valid answer
        grades, tag = [0.0], "no_grade"
    if failed:
        tag = error_tag(exc)
    row = rec.get("row") if isinstance(rec.get("row"), dict) else {}
    meta: dict[str, Any] = {}
    for k in ("id", "category"):
        if row.get(k) is not None:
            meta[k] = _clean(_as_text(row[k]), LABEL_CHARS)
    if rec.get("parsed_answer") is not None:
        meta["parsed_answer"] = _clean(_as_text(rec["parsed_answer"]), PREVIEW_CHARS)
    if failed:
        meta["exception"] = _clean(_as_text(exc), 2000)
    return {
        "example_idx": idx,
        "correct": grades[0] >= 1.0,
        "score": math.fsum(grades) / len(grades),
        "input_preview": _clean(prompt_text(rec), PREVIEW_CHARS),
        "output_preview": _clean(picked_generation(rec), PREVIEW_CHARS),
        "ground_truth": _clean(_as_text(rec.get("ground_truth")), GROUND_TRUTH_CHARS),
        "error_tag": tag,
        "topic": _clean(_as_text(row.get("topic")), LABEL_CHARS),
        "difficulty": _clean(_as_text(row.get("difficulty")), LABEL_CHARS),
        "subtask": _clean(_as_text(row.get("subtask")), LABEL_CHARS),
        "metadata": meta,
    }


def read_examples(path: str | os.PathLike) -> list[dict]:
    """Example rows of one grades file; example_idx is the 0-based line number. Raises ParseError."""
    rows = []
    with open(path, "rb") as f:
        for i, raw in enumerate(f):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as exc:
                raise ParseError(path, i + 1, f"not a JSON object: {exc}") from None
            if not isinstance(rec, dict):
                raise ParseError(path, i + 1, "not a JSON object")
            rows.append(example_row(i, rec, path, i + 1))
    return rows


# ---------------------------------------------------------------- planning

@dataclass
class Checkpoint:
    folder: Path
    posted_id: str
    canonical: str
    step: int | None


@dataclass
class Job:
    """One scores file, ready to send."""

    path: str
    payload: dict
    grades: str | None


@dataclass
class Summary:
    files: int = 0
    folders: int = 0
    imported: int = 0
    example_files: int = 0
    example_rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None


def run_id_for(model_id: str, canonical_checkpoint: str, dataset: str) -> str:
    """The same (model, checkpoint, dataset) always gets the same eval run id: re-runs update."""
    h = hashlib.sha256(f"{model_id}\x1f{canonical_checkpoint}\x1f{dataset}".encode()).hexdigest()
    return "bf-" + h[:32]


@dataclass
class Folder:
    """A folder holding scores files: its path, scores file names (sorted), all its file names."""

    path: str
    scores: list[str]
    names: set[str]


def _list(folder: str) -> tuple[list[str], set[str], list[str]]:
    """(scores file names, all file names, sub-folder names) of one folder, from one scandir."""
    scores, names, dirs = [], set(), []
    try:
        with os.scandir(folder) as it:
            for e in it:
                name = e.name
                try:
                    if name.endswith((".yaml", ".jsonl")):  # the files of an eval run (no stat needed)
                        if e.is_file():
                            names.add(name)
                            if name.endswith(SCORES_SUFFIX):
                                scores.append(name)
                    elif e.is_dir():
                        dirs.append(name)
                except OSError:
                    continue
    except OSError:
        pass
    return sorted(scores), names, sorted(dirs, key=_natural)


def _natural(name: str) -> list:
    """Sort key: step-2500 before step-10000."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def checkpoint_folders(root: str | os.PathLike, recursive: bool, match: str | None = None) -> list[Folder]:
    """Every folder holding scores files, in name order: `root` itself, or (recursive) the whole tree.

    With `match` (recursive only), only folders whose name matches that glob pattern count.
    """
    root = os.fspath(root)
    out: list[Folder] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        scores, names, dirs = _list(folder)
        if scores and (not match or fnmatch.fnmatchcase(os.path.basename(folder.rstrip(os.sep)), match)):
            out.append(Folder(folder, scores, names))
        if recursive:
            stack.extend(os.path.join(folder, d) for d in reversed(dirs) if not d.startswith("."))
    return out


def checkpoint_for(folder: Path, args: argparse.Namespace) -> Checkpoint:
    model = args.model_id
    name = folder.resolve().name if folder.name in ("", ".", "..") else folder.name
    if args.model_type == "baseline":
        posted = args.checkpoint_id or f"{model}__baseline"
        canonical, step = canonical_checkpoint_id(model, "baseline", posted, None)
        return Checkpoint(folder, posted, canonical, None)
    step = args.training_step
    if step is None and args.checkpoint_id:
        tail = args.checkpoint_id.split("__", 1)[1] if "__" in args.checkpoint_id else args.checkpoint_id
        step = detect_step(tail) if tail != model else None
    if step is None and name != model:  # a model folder named like the model: its digits are no step
        step = detect_step(name)
    if args.checkpoint_id:
        posted = args.checkpoint_id
    elif step is not None and args.training_step is None and name != f"step-{step}" \
            and is_valid_id(f"{model}__{name}"):
        posted = f"{model}__{name}"  # kept by the server as an alias of {model}__step-{N}
    elif step is not None:
        posted = f"{model}__step-{step}"
    elif name != model and is_valid_id(f"{model}__{name}"):
        posted = f"{model}__{name}"
    else:
        posted = f"{model}__unknown"
    canonical, step = canonical_checkpoint_id(model, "training", posted, step)
    return Checkpoint(folder, posted, canonical, step)


def build_payload(args: argparse.Namespace, ckpt: Checkpoint, dataset: str, metrics: dict[str, float],
                  sample_count: int | None, path: str, warn: list[tuple[str, str]]) -> dict:
    names = list(metrics)
    primary = M.default_primary(names)
    if args.primary_metric:
        if args.primary_metric in metrics:
            primary = args.primary_metric
        else:
            warn.append((str(path), f"no metric {args.primary_metric!r}; primary is {primary!r}"))
    p: dict[str, Any] = {
        "model_id": args.model_id,
        "display_name": args.display_name or args.model_id,
        "owner": args.owner,
        "model_type": args.model_type,
        "checkpoint_id": ckpt.posted_id,
        "dataset_name": dataset,
        "metrics": metrics,
        "primary_metric": primary,
        "eval_run_id": run_id_for(args.model_id, ckpt.canonical, dataset),
        "metadata": {"backfill_source": path},
    }
    if ckpt.step is not None:
        p["training_step"] = ckpt.step
    if sample_count is not None:
        p["sample_count"] = sample_count
    return p


def plan(args: argparse.Namespace, summary: Summary, folders: list[Folder] | None = None
         ) -> Iterator[list[Job]]:
    """Parse the tree; yield the jobs of one checkpoint folder at a time (bad files go to the summary)."""
    if folders is None:
        folders = checkpoint_folders(args.output_dir, args.recursive, args.match)
    seen: dict[tuple[str, str], str] = {}
    for folder in folders:
        summary.folders += 1
        ckpt = checkpoint_for(Path(folder.path), args)
        jobs = []
        for name in folder.scores:
            summary.files += 1
            path = os.path.join(folder.path, name)
            dataset = name[: -len(SCORES_SUFFIX)]
            if not is_valid_id(dataset):
                why = f"dataset name {dataset!r} is not a valid id (empty, or has spaces, slashes or ?#%)"
                summary.failed.append((path, why))
                continue
            try:
                metrics = read_scores(path)
            except ParseError as exc:
                summary.failed.append((path, f"line {exc.line}: {exc.message}" if exc.line else exc.message))
                continue
            except OSError as exc:
                summary.failed.append((path, f"cannot read: {exc.strerror or exc}"))
                continue
            if not metrics:
                summary.skipped.append((path, "empty scores file (no metrics)"))
                continue
            key = (ckpt.canonical, dataset)
            if key in seen:
                why = f"same checkpoint {ckpt.canonical} and dataset {dataset} as {seen[key]}; not sent"
                summary.failed.append((path, why))
                continue
            seen[key] = path
            grades = None
            sample_count = None
            if dataset + GRADES_SUFFIX in folder.names:
                grades = os.path.join(folder.path, dataset + GRADES_SUFFIX)
                try:
                    sample_count = count_lines(grades)
                except OSError as exc:
                    summary.warnings.append((grades, f"cannot read: {exc.strerror or exc}"))
                    grades = None
            jobs.append(Job(path, build_payload(args, ckpt, dataset, metrics, sample_count, path,
                                                summary.warnings), grades))
        if args.with_examples:
            for g in sorted(folder.names):
                if g.endswith(GRADES_SUFFIX) and g[: -len(GRADES_SUFFIX)] + SCORES_SUFFIX not in folder.names:
                    orphan = os.path.join(folder.path, g)
                    summary.skipped.append((orphan, "grades file without a scores file"))
        yield jobs


def batches(groups: Iterable[list[Job]], size: int, max_rows: int | None) -> Iterator[list[Job]]:
    """Whole checkpoint folders per batch where possible (concurrent batches then touch disjoint rows)."""
    cur: list[Job] = []
    rows = 0
    for jobs in groups:
        if cur and (len(cur) + len(jobs) > size or (max_rows and rows >= max_rows)):
            yield cur
            cur, rows = [], 0
        for j in jobs:
            cur.append(j)
            if max_rows:
                rows += j.payload.get("sample_count") or 0
            if len(cur) >= size or (max_rows and rows >= max_rows):
                yield cur
                cur, rows = [], 0
    if cur:
        yield cur


# ---------------------------------------------------------------- sending

@dataclass
class Outcome:
    imported: int = 0
    example_files: int = 0
    example_rows: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    fatal: str | None = None
    done: int = 0  # scores files handled by this batch
    sent: list[Job] = field(default_factory=list)
    settled: set[int] = field(default_factory=set)


class Fatal(Exception):
    """Stop the backfill: the server refuses the token, or stayed unreachable after the retries."""


_ITEM = re.compile(r"^results\[(\d+)\]")


def _is_fatal(exc) -> bool:
    return exc.status is None or exc.status in (401, 403) or exc.status >= 500


def post_results(client, jobs: list[Job], out: Outcome) -> None:
    """Send a batch; a result the server refuses (409/422) is failed alone, the others go again."""
    from ..client import DashboardError

    todo = [jobs]
    while todo:
        part = todo.pop()
        try:
            client.post_eval_results([j.payload for j in part], source="backfill")
        except DashboardError as exc:
            if _is_fatal(exc):
                raise Fatal(str(exc)) from exc
            err = (exc.body or {}).get("error", {}) if isinstance(exc.body, dict) else {}
            m = _ITEM.match(str(err.get("field") or ""))
            if exc.status != 413 and m and int(m.group(1)) < len(part):
                i = int(m.group(1))
                out.failed.append((part[i].path, f"refused by the server (HTTP {exc.status}): {exc}"))
                out.settled.add(id(part[i]))
                rest = part[:i] + part[i + 1:]
            elif len(part) == 1:
                out.failed.append((part[0].path, f"refused by the server (HTTP {exc.status}): {exc}"))
                out.settled.add(id(part[0]))
                rest = []
            else:  # no index given: halve until the bad result is alone
                mid = len(part) // 2
                todo.append(part[mid:])
                todo.append(part[:mid])
                continue
            if rest:
                todo.append(rest)
            continue
        out.sent.extend(part)
        out.settled.update(id(j) for j in part)
        out.imported += len(part)


def send_batch(client, jobs: list[Job], with_examples: bool, examples_per_call: int) -> Outcome:
    from ..client import DashboardError

    out = Outcome(done=len(jobs))
    try:
        post_results(client, jobs, out)
        if not with_examples:
            return out
        for j in out.sent:
            if j.grades is None:
                continue
            try:
                rows = read_examples(j.grades)
            except ParseError as exc:
                out.failed.append((j.grades, f"line {exc.line}: {exc.message}; no examples sent"))
                continue
            except OSError as exc:
                out.failed.append((j.grades, f"cannot read: {exc.strerror or exc}"))
                continue
            if not rows:
                continue
            try:
                out.example_rows += client.post_examples(j.payload["eval_run_id"], rows,
                                                         batch_size=examples_per_call)
                out.example_files += 1
            except DashboardError as exc:
                if _is_fatal(exc):
                    raise Fatal(str(exc)) from exc
                out.failed.append((j.grades, f"examples refused by the server (HTTP {exc.status}): {exc}"))
    except Fatal as exc:
        out.fatal = str(exc)
        out.failed.extend((j.path, f"not sent: {exc}") for j in jobs if id(j) not in out.settled)
    return out


# ---------------------------------------------------------------- the command

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="backfill.py",
        description="Import *_scores.yaml (and optionally *_grades.jsonl) files from past Eval360-V2 runs "
                    "into the dashboard. Idempotent: re-running updates the same records.")
    ap.add_argument("--output-dir", required=True, help="directory containing *_scores.yaml files "
                                                       "(with --recursive: a whole output tree of one model)")
    ap.add_argument("--model-id", required=True, help="model slug (e.g. k2-think-v2)")
    ap.add_argument("--display-name", default=None, help="human-friendly name (default: model-id)")
    ap.add_argument("--model-type", choices=["training", "baseline"], default="training",
                    help="training or baseline (default: training)")
    ap.add_argument("--owner", default="backfill", help="owner name (default: backfill)")
    ap.add_argument("--training-step", type=int, default=None, help="override auto-detected step")
    ap.add_argument("--checkpoint-id", default=None, help="override auto-generated checkpoint ID")
    ap.add_argument("--primary-metric", default=None,
                    help="which metric is primary (default: first key in YAML)")
    ap.add_argument("--dashboard-url", default=None, help="dashboard base URL (else EVAL360_DASHBOARD_URL, "
                                                         "else the env file)")
    ap.add_argument("--token", default=None, help="ingest bearer token (else EVAL360_DASHBOARD_TOKEN, "
                                                  "else the env file)")
    ap.add_argument("--env-file", default=None,
                    help="env file with EVAL360_DASHBOARD_URL/TOKEN "
                         "(default: EVAL360_DASHBOARD_ENV_FILE or the shared one)")
    ap.add_argument("--recursive", action="store_true",
                    help="walk the whole tree and import every folder with scores files (nested step-*/ "
                         "folders or flat checkpoint folders) under this one model id")
    ap.add_argument("--match", default=None, metavar="GLOB",
                    help="with --recursive: only checkpoint folders whose name matches GLOB, e.g. "
                         "'k2moe375b-mid1-checkpoint_*' for one model's flat folders in a shared output dir")
    ap.add_argument("--with-examples", action="store_true",
                    help="also send per-example rows from the matching *_grades.jsonl files")
    ap.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    ap.add_argument("--batch-size", type=int, default=250, help="results per request (max 5000; default 250)")
    ap.add_argument("--workers", type=int, default=1,
                    help="requests in flight at once (default 1: the next batch is parsed while one is sent; "
                         "concurrent batches of one model contend for the same rows on the server)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds to wait for one request before retrying it (default 600)")
    ap.add_argument("--examples-per-call", type=int, default=MAX_EXAMPLES_PER_CALL,
                    help=f"example rows per request (default and max {MAX_EXAMPLES_PER_CALL})")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--quiet", "-q", action="store_true",
                    help="print only failures and the last summary line")
    return ap


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not is_valid_id(args.model_id):
        ap.error(f"--model-id {args.model_id!r}: no spaces, slashes or ?#% (it appears in URLs)")
    if args.checkpoint_id is not None and not is_valid_id(args.checkpoint_id):
        ap.error(f"--checkpoint-id {args.checkpoint_id!r}: no spaces, slashes or ?#%")
    if args.training_step is not None and args.training_step < 0:
        ap.error("--training-step must be >= 0")
    if args.recursive and (args.training_step is not None or args.checkpoint_id):
        ap.error("--training-step and --checkpoint-id name one checkpoint; they do not go with --recursive")
    if args.match and not args.recursive:
        ap.error("--match goes with --recursive")
    if args.model_type == "baseline" and args.training_step is not None:
        ap.error("a baseline has no training step")
    if not 1 <= args.batch_size <= 5000:
        ap.error("--batch-size must be between 1 and 5000")
    if not 1 <= args.examples_per_call <= MAX_EXAMPLES_PER_CALL:
        ap.error(f"--examples-per-call must be between 1 and {MAX_EXAMPLES_PER_CALL}")
    args.workers = max(1, args.workers)
    if not Path(args.output_dir).is_dir():
        ap.error(f"--output-dir {args.output_dir}: not a directory")
    return args


def _progress(total: int, args: argparse.Namespace):
    from tqdm import tqdm

    disable = True if args.no_progress or args.quiet or total < 200 else None  # None: only on a terminal
    return tqdm(total=total, unit="file", desc=f"backfill {args.model_id}", file=sys.stderr,
                disable=disable, mininterval=0.5, dynamic_ncols=True)


def run(args: argparse.Namespace, client=None, out=None) -> Summary:
    """The backfill proper; `client` is a DashboardClient (made from the args when None)."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    summary = Summary()
    # List the tree first (the progress bar's total), then parse folder by folder while sending.
    folders = checkpoint_folders(args.output_dir, args.recursive, args.match)
    total = sum(len(f.scores) for f in folders)

    if args.dry_run:
        for g in plan(args, summary, folders):
            for j in g:
                out.write("POST /api/ingest/eval-results " + json.dumps(j.payload, ensure_ascii=False) + "\n")
                summary.imported += 1
                if args.with_examples and j.grades is not None:
                    try:
                        rows = read_examples(j.grades)
                    except ParseError as exc:
                        summary.failed.append((j.grades, f"line {exc.line}: {exc.message}"))
                        continue
                    out.write(f"POST /api/ingest/examples eval_run_id={j.payload['eval_run_id']} "
                              f"rows={len(rows)} ({j.grades})\n")
                    summary.example_files += 1
                    summary.example_rows += len(rows)
        summary.seconds = time.perf_counter() - t0
        return summary

    own_client = client is None
    if own_client:
        from ..client import DashboardClient

        client = DashboardClient(args.dashboard_url, args.token, env_file=args.env_file, timeout=args.timeout)
    bar = _progress(total, args)
    max_rows = args.examples_per_call if args.with_examples else None
    inflight: set[cf.Future] = set()
    stop = threading.Event()

    def settle(fut: cf.Future) -> None:
        o: Outcome = fut.result()
        summary.imported += o.imported
        summary.example_files += o.example_files
        summary.example_rows += o.example_rows
        summary.failed.extend(o.failed)
        if o.fatal and summary.aborted is None:
            summary.aborted = o.fatal
            stop.set()
        bar.update(o.done)

    def groups() -> Iterator[list[Job]]:
        before = 0
        for jobs in plan(args, summary, folders):
            bar.update(summary.files - before - len(jobs))  # files failed or skipped while parsing
            before = summary.files
            if jobs:
                yield jobs

    unsent: list[Job] = []
    pool = cf.ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="backfill")
    try:
        for batch in batches(groups(), args.batch_size, max_rows):
            if stop.is_set():
                unsent.extend(batch)
                continue
            while len(inflight) > args.workers:
                done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    inflight.discard(f)
                    settle(f)
            inflight.add(pool.submit(send_batch, client, batch, args.with_examples, args.examples_per_call))
        for f in cf.as_completed(list(inflight)):
            settle(f)
    except BaseException:
        # Ctrl-C / SIGTERM: queue no more; requests in flight finish on their own (each is atomic).
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        bar.close()
        if own_client:
            client.close()
    for j in unsent:
        summary.failed.append((j.path, f"not sent: the backfill stopped ({summary.aborted})"))
    summary.seconds = time.perf_counter() - t0
    return summary


def print_summary(s: Summary, args: argparse.Namespace, stream=None, limit: int = 50) -> None:
    stream = stream or sys.stderr

    def section(title: str, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        print(f"{title} ({len(items)}):", file=stream)
        for path, reason in items[:limit]:
            print(f"  {path}: {reason}", file=stream)
        if len(items) > limit:
            print(f"  ... and {len(items) - limit} more", file=stream)

    if not args.quiet:
        section("warnings", s.warnings)
        section("skipped", s.skipped)
    section("FAILED", s.failed)
    if s.aborted:
        print(f"stopped early: {s.aborted}", file=stream)
    verb = "would import" if args.dry_run else "imported"
    rate = s.files / s.seconds if s.seconds > 0 else 0.0
    ex = f", {s.example_rows} example rows from {s.example_files} grades files" if args.with_examples else ""
    print(f"backfill {args.model_id}: {s.files} scores files in {s.folders} folders; "
          f"{verb} {s.imported}{ex}; "
          f"skipped {len(s.skipped)}; failed {len(s.failed)}; {s.seconds:.1f}s ({rate:.0f} files/s)",
          file=stream)


def main(argv: list[str] | None = None, client=None) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    from ..client import ConfigError

    try:
        summary = run(args, client=client)
    except ConfigError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return 2
    if summary.files == 0 and not summary.failed:
        hint = ""
        if not args.recursive and checkpoint_folders(args.output_dir, True):
            hint = " (its subfolders have some: add --recursive)"
        print(f"backfill: no *{SCORES_SUFFIX} files in {args.output_dir}{hint}", file=sys.stderr)
        return 1
    print_summary(summary, args)
    return 0 if summary.ok else 1
