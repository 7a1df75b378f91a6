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
import logging
import sys
from pathlib import Path

from ..core.ids import is_valid_id
from .parse import MAX_EXAMPLES_PER_CALL, SCORES_SUFFIX
from .plan import Summary, checkpoint_folders
from .send import run

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
