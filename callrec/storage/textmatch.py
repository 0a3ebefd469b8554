"""Name filters as OpenVidu Meet has them (`exact`, `prefix`, `partial`, `regex`; case-insensitive or not), as SQL.

`regex` patterns are user input evaluated against the catalog, so they are held to a subset that both catalog
databases evaluate the same way and in time linear in the name's length:

* at most `REGEX_MAX_LENGTH` characters, repetition bounds `{n,m}` at most `REGEX_MAX_QUANTIFIER` (PostgreSQL's
  own ceiling; Meet's 65535 is MongoDB's), a compiled program of at most `REGEX_MAX_PROGRAM` steps, built in at
  most `REGEX_MAX_VISITS` node visits (a repeat of something empty, `(){255}` nested, counts what it expands to);
* literals, `.`, `^`, `$`, `|`, groups `(...)` and `(?:...)`, `* + ? {n} {n,} {n,m}` (lazy forms too), bracket
  classes with ranges and negation, `\\d \\D \\w \\W \\s \\S` and escaped punctuation. Backreferences, lookaround,
  inline flags, word boundaries and POSIX classes are refused: they are what makes a backtracking engine
  exponential, and the two databases disagree on them.

PostgreSQL runs the pattern with its own engine (`~`, `~*`: automata, no backtracking). SQLite has no regex
operator: `install_sqlite_regex` registers `callrec_regex`, which runs the pattern on the Pike VM below (a
Thompson-NFA simulation: every step advances all threads by one character, so a match costs at most
name length x program size, whatever the pattern).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy.orm import InstrumentedAttribute

REGEX_MAX_LENGTH = 100
REGEX_MAX_QUANTIFIER = 255
REGEX_MAX_PROGRAM = 5000
REGEX_MAX_VISITS = 4 * REGEX_MAX_PROGRAM  # nodes compiled (a repeat compiles its child once per copy)
LIKE_ESCAPE = "\\"
SQLITE_FUNCTION = "callrec_regex"

INVALID_PATTERN = "Invalid regular expression pattern"
PATTERN_TOO_LONG = f"Regular expression pattern cannot exceed {REGEX_MAX_LENGTH} characters"
QUANTIFIER_TOO_BIG = f"Regular expression quantifiers cannot exceed {REGEX_MAX_QUANTIFIER}"
PATTERN_TOO_COMPLEX = "Regular expression pattern is too complex"


class MatchMode(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    PARTIAL = "partial"
    REGEX = "regex"


class InvalidPattern(ValueError):
    """A `regex` filter this service will not evaluate; the message is the API's (Meet's wording)."""


# ---- the program: a list of instructions, run by `_run` ------------------------------------------------------

Pred = Callable[[str], bool]


@dataclass(slots=True)
class _Char:
    pred: Pred


@dataclass(slots=True)
class _Split:
    a: int
    b: int


@dataclass(slots=True)
class _Jmp:
    to: int


@dataclass(slots=True)
class _Assert:
    bol: bool  # True: start of the name (^); False: its end ($)


class _Match:
    pass


Instr = _Char | _Split | _Jmp | _Assert | _Match

# The pattern's syntax tree: ("char", pred) | ("any",) | ("bol",) | ("eol",) | ("cat", [nodes])
# | ("alt", [nodes]) | ("rep", node, min, max or None)
Node = tuple[Any, ...]

_CLASS_ESCAPES: dict[str, Pred] = {
    "d": str.isdigit,
    "w": lambda c: c.isalnum() or c == "_",
    "s": str.isspace,
}
_PUNCTUATION = set("\\.^$|()[]{}*+?-/ '\"#&~!%,:;<=>@`")


def _is(ch: str) -> Pred:
    return lambda c: c == ch


def _between(low: str, high: str) -> Pred:
    return lambda c: low <= c <= high


def _escape_pred(ch: str) -> Pred:
    low = ch.lower()
    if low in _CLASS_ESCAPES:
        base = _CLASS_ESCAPES[low]
        return base if ch == low else (lambda c: not base(c))
    if ch in _PUNCTUATION:
        return _is(ch)
    raise InvalidPattern(INVALID_PATTERN)


class _Parser:
    def __init__(self, pattern: str, fold: bool) -> None:
        self.p = pattern
        self.i = 0
        self.fold = fold

    def folded(self, pred: Pred) -> Pred:
        """Under case-insensitive matching a character matches when one of its cases does."""
        if not self.fold:
            return pred
        return lambda c: pred(c) or pred(c.lower()) or pred(c.upper())

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self) -> str:
        if self.i >= len(self.p):
            raise InvalidPattern(INVALID_PATTERN)
        ch = self.p[self.i]
        self.i += 1
        return ch

    def parse(self) -> Node:
        node = self.alternation()
        if self.i != len(self.p):
            raise InvalidPattern(INVALID_PATTERN)  # an unopened ')'
        return node

    def alternation(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def sequence(self) -> Node:
        items: list[Node] = []
        while (ch := self.peek()) is not None and ch not in "|)":
            items.append(self.repeated(self.atom()))
        return ("cat", items)

    def atom(self) -> Node:
        ch = self.take()
        if ch == "(":
            if self.peek() == "?":
                if self.p[self.i : self.i + 2] != "?:":
                    raise InvalidPattern(INVALID_PATTERN)  # lookaround, named groups, inline flags
                self.i += 2
            inner = self.alternation()
            if self.take() != ")":
                raise InvalidPattern(INVALID_PATTERN)
            return inner
        if ch == ".":
            return ("any",)
        if ch == "^":
            return ("bol",)
        if ch == "$":
            return ("eol",)
        if ch == "[":
            return ("char", self.bracket())
        if ch == "\\":
            return ("char", self.folded(_escape_pred(self.take())))
        if ch in "*+?{)]}":
            raise InvalidPattern(INVALID_PATTERN)  # a quantifier with nothing before it, or a stray closer
        return ("char", self.folded(_is(ch)))

    def bracket(self) -> Pred:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        parts: list[Pred] = []
        first = True
        while True:
            ch = self.take()
            if ch == "]" and not first:
                break
            first = False
            if ch == "[":
                raise InvalidPattern(INVALID_PATTERN)  # POSIX classes and the like
            if ch == "\\":
                esc = self.take()
                if esc.lower() in _CLASS_ESCAPES:
                    parts.append(_escape_pred(esc))
                    continue
                ch = esc if esc in _PUNCTUATION else _raise_invalid()
            if self.peek() == "-" and self.p[self.i + 1 : self.i + 2] not in ("]", ""):
                self.i += 1
                end = self.take()
                if end == "\\":
                    end = self.take()
                    if end not in _PUNCTUATION:
                        raise InvalidPattern(INVALID_PATTERN)
                elif end == "[":
                    raise InvalidPattern(INVALID_PATTERN)
                if ord(end) < ord(ch):
                    raise InvalidPattern(INVALID_PATTERN)
                parts.append(_between(ch, end))
            else:
                parts.append(_is(ch))
        members = tuple(parts)
        inside = self.folded(lambda c: any(p(c) for p in members))
        return (lambda c: not inside(c)) if negate else inside

    def repeated(self, node: Node) -> Node:
        if (ch := self.peek()) is not None and ch in "*+?{":
            if node[0] in ("bol", "eol"):
                raise InvalidPattern(INVALID_PATTERN)
            self.i += 1
            if ch == "*":
                low, high = 0, None
            elif ch == "+":
                low, high = 1, None
            elif ch == "?":
                low, high = 0, 1
            else:
                low, high = self.bounds()
            if self.peek() == "?":
                self.i += 1  # lazy: the same names match, only which part of them differs
            node = ("rep", node, low, high)
        return node

    def bounds(self) -> tuple[int, int | None]:
        end = self.p.find("}", self.i)
        if end < 0:
            raise InvalidPattern(INVALID_PATTERN)
        text = self.p[self.i : end]
        self.i = end + 1
        low_text, comma, high_text = text.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            raise InvalidPattern(INVALID_PATTERN)
        low = int(low_text)
        high = int(high_text) if high_text else (None if comma else low)
        if low > REGEX_MAX_QUANTIFIER or (high is not None and high > REGEX_MAX_QUANTIFIER):
            raise InvalidPattern(QUANTIFIER_TOO_BIG)
        if high is not None and high < low:
            raise InvalidPattern(INVALID_PATTERN)
        return low, high


def _raise_invalid() -> str:
    raise InvalidPattern(INVALID_PATTERN)


class _Compiler:
    def __init__(self) -> None:
        self.prog: list[Instr] = []
        self.visits = 0  # every node compiled, also those that emit nothing (`(){255}`): bounds the work

    def node(self, n: Node) -> None:
        self.visits += 1
        if self.visits > REGEX_MAX_VISITS:
            raise InvalidPattern(PATTERN_TOO_COMPLEX)
        self._node(n)

    def emit(self, instr: Instr) -> int:
        if len(self.prog) >= REGEX_MAX_PROGRAM:
            raise InvalidPattern(PATTERN_TOO_COMPLEX)
        self.prog.append(instr)
        return len(self.prog) - 1

    def _node(self, n: Node) -> None:
        kind = n[0]
        if kind == "char":
            self.emit(_Char(n[1]))
        elif kind == "any":
            self.emit(_Char(lambda c: c != "\n"))
        elif kind in ("bol", "eol"):
            self.emit(_Assert(kind == "bol"))
        elif kind == "cat":
            for child in n[1]:
                self.node(child)
        elif kind == "alt":
            jumps: list[_Jmp] = []
            branches: list[Node] = n[1]
            for index, child in enumerate(branches):
                if index < len(branches) - 1:
                    split = _Split(len(self.prog) + 1, -1)
                    self.emit(split)
                    self.node(child)
                    jump = _Jmp(-1)
                    self.emit(jump)
                    jumps.append(jump)
                    split.b = len(self.prog)
                else:
                    self.node(child)
            for jump in jumps:
                jump.to = len(self.prog)
        else:  # rep
            child, low, high = n[1], n[2], n[3]
            for _ in range(low):
                self.node(child)
            if high is None:
                split = _Split(len(self.prog) + 1, -1)
                start = self.emit(split)
                self.node(child)
                self.emit(_Jmp(start))
                split.b = len(self.prog)
            else:
                splits: list[_Split] = []
                for _ in range(high - low):
                    split = _Split(len(self.prog) + 1, -1)
                    self.emit(split)
                    splits.append(split)
                    self.node(child)
                for split in splits:
                    split.b = len(self.prog)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, case_insensitive: bool = False) -> tuple[Instr, ...]:
    """The checked, compiled pattern; raises InvalidPattern with the API's message."""
    if len(pattern) > REGEX_MAX_LENGTH:
        raise InvalidPattern(PATTERN_TOO_LONG)
    tree = _Parser(pattern, case_insensitive).parse()
    compiler = _Compiler()
    compiler.node(tree)
    compiler.emit(_Match())
    return tuple(compiler.prog)


def _add(prog: tuple[Instr, ...], threads: list[int], seen: set[int], pc: int, pos: int, length: int) -> None:
    stack = [pc]
    while stack:
        pc = stack.pop()
        if pc in seen:
            continue
        seen.add(pc)
        instr = prog[pc]
        if isinstance(instr, _Jmp):
            stack.append(instr.to)
        elif isinstance(instr, _Split):
            stack.append(instr.b)
            stack.append(instr.a)
        elif isinstance(instr, _Assert):
            if (pos == 0) if instr.bol else (pos == length):
                stack.append(pc + 1)
        else:
            threads.append(pc)


def search(prog: tuple[Instr, ...], text: str) -> bool:
    """Whether the program matches somewhere in `text` (unanchored, like `~`): O(len(text) x len(prog))."""
    length = len(text)
    threads: list[int] = []
    seen: set[int] = set()
    for pos in range(length + 1):
        _add(prog, threads, seen, 0, pos, length)  # a match may start here
        if any(isinstance(prog[pc], _Match) for pc in threads):
            return True
        if pos == length:
            break
        ch = text[pos]
        following: list[int] = []
        next_seen: set[int] = set()
        for pc in threads:
            instr = prog[pc]
            if isinstance(instr, _Char) and instr.pred(ch):
                _add(prog, following, next_seen, pc + 1, pos + 1, length)
        threads, seen = following, next_seen
    return False


def _sqlite_regex(pattern: str | None, flags: int | None, value: str | None) -> int | None:
    if pattern is None or value is None:
        return None
    try:
        return int(search(compile_pattern(pattern, bool(flags)), value))
    except InvalidPattern:
        return 0  # checked before the query is built; a pattern that still fails matches nothing


def install_sqlite_regex(dbapi_connection: Any) -> None:
    """Registers `callrec_regex(pattern, case_insensitive, value)` on a SQLite connection."""
    dbapi_connection.create_function(SQLITE_FUNCTION, 3, _sqlite_regex, deterministic=True)


def check(value: str, mode: MatchMode) -> None:
    """Raises InvalidPattern when `value` is a `regex` filter this service will not run."""
    if mode is MatchMode.REGEX:
        compile_pattern(value)


def escape_like(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def condition(
    column: InstrumentedAttribute[str], value: str, mode: MatchMode, case_insensitive: bool, dialect: str
) -> ColumnElement[bool]:
    """`column` matches `value` in `mode` (Meet's semantics: `regex` searches anywhere unless anchored)."""
    ci = case_insensitive
    if mode is MatchMode.REGEX:
        check(value, mode)
        if dialect == "postgresql":
            matched: ColumnElement[bool] = column.op("~*" if ci else "~")(value)
            return matched
        return func.callrec_regex(value, 1 if ci else 0, column) == 1
    if mode is MatchMode.EXACT:
        return func.lower(column) == func.lower(value) if ci else column == value
    pattern = escape_like(value) + "%"
    if mode is MatchMode.PARTIAL:
        pattern = "%" + pattern
    if ci:
        return func.lower(column).like(func.lower(pattern), escape=LIKE_ESCAPE)
    like: ColumnElement[bool] = column.like(pattern, escape=LIKE_ESCAPE)
    if dialect == "sqlite":
        # SQLite's LIKE ignores ASCII case: check the case as well (instr finds the first occurrence).
        found = func.instr(column, value)
        like = and_(like, found == 1 if mode is MatchMode.PREFIX else found > 0)
    return like
