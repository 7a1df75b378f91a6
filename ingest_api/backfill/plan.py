"""Backfill, planning: the checkpoint folders, their step and checkpoint id, one payload per scores file,
and the batches (cut at checkpoint-folder boundaries)."""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.ids import is_valid_id
from ..ingest import metrics as M
from ..ingest.naming import canonical_checkpoint_id, detect_step
from .parse import GRADES_SUFFIX, SCORES_SUFFIX, ParseError, count_lines, read_scores

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
