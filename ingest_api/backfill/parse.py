"""Backfill, reading: the strict scores-file parser and the grades files as example rows."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

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
