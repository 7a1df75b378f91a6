#!/usr/bin/env python3
"""Import past Eval360-V2 runs (*_scores.yaml, *_grades.jsonl) into the dashboard. See README."""

import sys


def main(argv=None) -> int:
    from ingest_api.backfill.main import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
