"""Backfill, sending: batches through the ingest API (a refused result fails alone, the rest of its batch is
sent again), example rows per grades file, and the run that plans, parses ahead and sends."""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .parse import ParseError, read_examples
from .plan import Job, Summary, batches, checkpoint_folders, plan

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
