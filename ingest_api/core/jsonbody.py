"""Request-level checks of every JSON body, before any route reads it (README, "Validation rules").

- A key given twice in one object is refused: JSON parsers silently keep the last one, so a body with
  `model_id` twice would be stored under whichever the parser picked.
- An integer outside signed 64 bits, anywhere (metadata, eval_config, nested lists), is refused: the
  database would keep it, but no reply could carry it back (every read of it would fail).

Both answer 422 naming the field path (`results[3].metadata.x`). A body that is not JSON at all is
left to FastAPI, which answers it in the one error shape. `NaN` / `Infinity` parse as before.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import error_response

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_METHODS = {"POST", "PUT", "PATCH"}


class _Dup(dict):
    """An object in which `dup_key` was given more than once."""

    dup_key: str = ""


class _Big(int):
    """An integer literal outside signed 64 bits (its text kept for the message)."""

    text: str = ""


def _parse(body: bytes) -> tuple[Any, bool]:
    """The parsed body and whether it holds a duplicate key or a too-large integer."""
    flagged = False

    def pairs(kv: list[tuple[str, Any]]) -> dict:
        nonlocal flagged
        d: dict = {}
        dup = None
        for k, v in kv:
            if k in d and dup is None:
                dup = k
            d[k] = v
        if dup is None:
            return d
        flagged = True
        out = _Dup(d)
        out.dup_key = dup
        return out

    def integer(s: str) -> int:
        nonlocal flagged
        if len(s.lstrip("-")) <= 19:
            v = int(s)
            if INT64_MIN <= v <= INT64_MAX:
                return v
        flagged = True  # more digits than 64 bits hold, or out of range: not converted at all
        b = _Big(0)
        b.text = s if len(s) <= 40 else s[:20] + "..." + s[-8:]
        return b

    return json.loads(body, object_pairs_hook=pairs, parse_int=integer), flagged


def _path(parts: list) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "body"


def find_problem(body: bytes) -> tuple[str, str] | None:
    """(field path, message) of the first duplicate key or too-large integer in body, else None.
    None too for a body that does not parse: FastAPI answers that one."""
    try:
        doc, flagged = _parse(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    if not flagged:
        return None
    stack: list[tuple[Any, list]] = [(doc, [])]
    while stack:  # depth-first, in document order
        node, parts = stack.pop()
        if isinstance(node, _Dup):
            where = _path([*parts, node.dup_key])
            return where, f"key {node.dup_key!r} is given more than once in one object"
        if isinstance(node, _Big):
            return _path(parts), (f"integer {node.text} is outside the signed 64-bit range "
                                  f"[{INT64_MIN}, {INT64_MAX}]; send it as a string or a float")
        if isinstance(node, dict):
            stack.extend((v, [*parts, k]) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, [*parts, i]) for i, v in reversed(list(enumerate(node))))
    return None


class JsonBodyCheck:
    """ASGI middleware: 422 for a JSON body with a duplicate key or an integer past 64 bits."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in _METHODS:
            return await self.app(scope, receive, send)
        ctype = ""
        for k, v in scope.get("headers", []):
            if k == b"content-type":
                ctype = v.decode("latin-1").split(";", 1)[0].strip().lower()
        if ctype and not (ctype == "application/json" or ctype.endswith("+json")):
            return await self.app(scope, receive, send)

        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # the client went away: nothing to check
                return await self.app(scope, _replay([msg], receive), send)
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = find_problem(body) if body.strip() else None
        if problem is not None:
            field, message = problem
            resp = error_response(422, f"{field}: {message}", field=field)
            return await resp(scope, receive, send)
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[dict], receive):
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
