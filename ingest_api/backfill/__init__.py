"""`python backfill.py`: import past Eval360-V2 runs through the ingest API."""
