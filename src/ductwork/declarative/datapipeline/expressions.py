"""The expression language of AWS Data Pipeline: ``#{...}`` inside field values.

A field's text is a *template*: literal text with expressions between ``#{`` and ``}``. An
expression is arithmetic and concatenation (``+ - * / ^``, unary minus, parentheses) over
numbers, quoted strings (single or double quotes, backslash escapes), function calls
(``format(@scheduledStartTime, 'YYYY-MM-dd')``, ``minusDays(x, 1)``), method-style calls on a
value (``@scheduledStartTime.format('YYYY')``) and references: ``myParameter``, a field of the
object (``name``, ``directoryPath``), a runtime field (``@scheduledStartTime``), or a path through
references (``node.output.directoryPath``, ``parent.@id``).

The parser is a small hand-written recursive descent over a tokenizer, so that every error
carries its offset in the field's text: validation reports ``object 'X', field 'command',
position 17: ...`` before anything runs. Evaluation is separate (``evaluate``) and takes a
``resolve`` callback for references, which is how the compiler checks names at validation time
and the operators resolve them at run time against the run's scheduled times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ductwork.declarative.datapipeline import jodatime
from ductwork.errors import DuctworkError


class ExpressionError(DuctworkError):
    """A template or expression that does not parse or evaluate; ``position`` is 0-based."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"position {position + 1}: {message}")


# --- the syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any
    pos: int


@dataclass(frozen=True)
class Ref:
    """A reference: ``path[0]`` is a name of the current object, a parameter or ``node``/
    ``parent``; further names follow references from there."""

    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    pos: int


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr
    pos: int


@dataclass(frozen=True)
class Neg:
    operand: Expr
    pos: int


Expr = Literal | Ref | Call | BinOp | Neg


@dataclass(frozen=True)
class Template:
    """Literal text and expressions, in order."""

    parts: tuple[str | Expr, ...]
    text: str

    @property
    def expressions(self) -> list[Expr]:
        return [p for p in self.parts if not isinstance(p, str)]

    @property
    def is_plain(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    pos: int


_SINGLE = {"(": "(", ")": ")", ",": ",", ".": ".", "+": "+", "-": "-", "*": "*", "/": "/", "^": "^"}


def _digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _tokenize(text: str, start: int, end: int) -> list[_Token]:
    """Tokens of ``text[start:end]``; positions are offsets in ``text``."""
    tokens: list[_Token] = []
    i = start
    while i < end:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"":
            value, i2 = _string(text, i, end)
            tokens.append(_Token("str", value, i))
            i = i2
        elif _digit(ch) or (ch == "." and i + 1 < end and _digit(text[i + 1])):
            j = i
            while j < end and _digit(text[j]):
                j += 1
            is_float = False
            if j < end and text[j] == "." and j + 1 < end and _digit(text[j + 1]):
                is_float = True
                j += 1
                while j < end and _digit(text[j]):
                    j += 1
            raw = text[i:j]
            tokens.append(_Token("num", float(raw) if is_float else int(raw), i))
            i = j
        elif (ch.isascii() and ch.isalpha()) or ch in "_@" or _masked_name_at(text, i, end, tokens):
            j = i + 1
            while j < end and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            name = text[i:j]
            if name == "@":
                raise ExpressionError(f"{name!r} must be followed by a field name", i)
            tokens.append(_Token("name", name, i))
            i = j
        elif ch in _SINGLE:
            tokens.append(_Token(_SINGLE[ch], ch, i))
            i += 1
        else:
            raise ExpressionError(f"unexpected character {ch!r}", i)
    tokens.append(_Token("end", None, end))
    return tokens


def _masked_name_at(text: str, i: int, end: int, tokens: list[_Token]) -> bool:
    """``*myPassword``: a parameter or field whose value AWS masks, named with its ``*``. A ``*``
    where a value is expected (not after a value, where it multiplies) and followed by a name."""
    if text[i] != "*" or i + 1 >= end or not (text[i + 1].isascii() and text[i + 1].isalpha()):
        return False
    return not tokens or tokens[-1].kind not in ("num", "str", "name", ")")


def _string(text: str, start: int, end: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < end:
        ch = text[i]
        if ch == "\\" and i + 1 < end:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ExpressionError("unterminated string", start)


# --- the parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self, kind: str, what: str) -> _Token:
        tok = self.tok
        if tok.kind != kind:
            raise ExpressionError(f"expected {what}, found {_describe(tok)}", tok.pos)
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression", self.tok.pos)
        expr = self.additive()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {_describe(self.tok)}", self.tok.pos)
        return expr

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.tok.kind in ("+", "-"):
            op = self.take(self.tok.kind, "an operator")
            left = BinOp(op.kind, left, self.multiplicative(), op.pos)
        return left

    def multiplicative(self) -> Expr:
        left = self.power()
        while self.tok.kind in ("*", "/"):
            op = self.take(self.tok.kind, "an operator")
            left = BinOp(op.kind, left, self.power(), op.pos)
        return left

    def power(self) -> Expr:
        base = self.unary()
        if self.tok.kind == "^":
            op = self.take("^", "'^'")
            return BinOp("^", base, self.power(), op.pos)  # right-associative
        return base

    def unary(self) -> Expr:
        if self.tok.kind == "-":
            op = self.take("-", "'-'")
            return Neg(self.unary(), op.pos)
        return self.postfix()

    def postfix(self) -> Expr:
        expr = self.primary()
        while self.tok.kind == ".":
            dot = self.take(".", "'.'")
            name = self.take("name", "a function name after '.'")
            if self.tok.kind != "(":
                raise ExpressionError(f"expected '(' after method name {name.value!r}", self.tok.pos)
            args = self.arguments()
            expr = Call(name.value, (expr, *args), dot.pos)
        return expr

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.i += 1
            return Literal(tok.value, tok.pos)
        if tok.kind == "(":
            self.i += 1
            inner = self.additive()
            self.take(")", "')'")
            return inner
        if tok.kind == "name":
            self.i += 1
            if self.tok.kind == "(":
                if tok.value.startswith("@"):
                    raise ExpressionError(f"{tok.value!r} is a field, not a function", tok.pos)
                return Call(tok.value, tuple(self.arguments()), tok.pos)
            path = [tok.value]
            # A path continues through '.name' unless that name is a method call.
            while (
                self.tok.kind == "." and self.tokens[self.i + 1].kind == "name" and self.tokens[self.i + 2].kind != "("
            ):
                self.i += 1
                path.append(self.take("name", "a field name").value)
            return Ref(tuple(path), tok.pos)
        raise ExpressionError(f"expected a value, found {_describe(tok)}", tok.pos)

    def arguments(self) -> list[Expr]:
        self.take("(", "'('")
        args: list[Expr] = []
        if self.tok.kind == ")":
            self.i += 1
            return args
        while True:
            args.append(self.additive())
            if self.tok.kind == ",":
                self.i += 1
                continue
            self.take(")", "',' or ')'")
            return args


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.kind == "str":
        return f"string {tok.value!r}"
    return repr(tok.value)


def parse_expression(text: str, start: int = 0, end: int | None = None) -> Expr:
    """One expression (the inside of ``#{...}``); positions are offsets in ``text``."""
    return _Parser(_tokenize(text, start, len(text) if end is None else end)).parse()


def _closing_brace(text: str, start: int) -> int:
    """The offset of the ``}`` that ends the expression starting at ``start`` (quotes skipped)."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            i = _string(text, i, len(text))[1]
            continue
        if ch == "}":
            return i
        i += 1
    return -1


def parse_template(text: str) -> Template:
    """A field's text as literal parts and expressions; raises ``ExpressionError`` with the
    offset of the first problem."""
    parts: list[str | Expr] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("#{", i):
            close = _closing_brace(text, i + 2)
            if close < 0:
                raise ExpressionError("'#{' is not closed by '}'", i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(parse_expression(text, i + 2, close))
            i = close + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts), text)


def parse_each(text: str) -> tuple[list[Expr], list[ExpressionError]]:
    """Every expression of a template parsed on its own: those that parse, and the error of each
    that does not (validation reports them all, not the first alone)."""
    parsed: list[Expr] = []
    errors: list[ExpressionError] = []
    i = 0
    while (start := text.find("#{", i)) >= 0:
        close = _closing_brace(text, start + 2)
        if close < 0:
            errors.append(ExpressionError("'#{' is not closed by '}'", start))
            break
        try:
            parsed.append(parse_expression(text, start + 2, close))
        except ExpressionError as exc:
            errors.append(exc)
        i = close + 1
    return parsed, errors


# --- values and evaluation ----------------------------------------------------------------------

Resolver = Callable[[tuple[str, ...], int], Any]
"""Resolves a reference path (with the offset of the reference, for errors) to a value."""


def to_text(value: Any) -> str:
    """How a value appears when spliced into text (AWS's DateTime form for dates)."""
    if isinstance(value, dt.datetime):
        return jodatime.iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _as_datetime(value: Any, name: str, pos: int) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return jodatime.parse_datetime(value)
        except ValueError:
            pass
    raise ExpressionError(f"{name}() wants a DateTime, got {_type_name(value)} {to_text(value)!r}", pos)


def _as_int(value: Any, name: str, pos: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ExpressionError(f"{name}() wants an integer, got {_type_name(value)} {to_text(value)!r}", pos)


def _type_name(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "DateTime"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, list):
        return "List"
    return "String"


def _shift(unit: str, sign: int) -> Callable[[dt.datetime, int], dt.datetime]:
    def shift(when: dt.datetime, amount: int) -> dt.datetime:
        return jodatime.add(when, unit, sign * amount)

    return shift


_DT = "dt"
_INT = "int"
_STR = "str"

FUNCTIONS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "day": ((_DT,), lambda d: d.day),
    "dayOfYear": ((_DT,), lambda d: d.timetuple().tm_yday),
    "firstOfMonth": ((_DT,), lambda d: jodatime.wall_clock(d, day=1)),
    "format": ((_DT, _STR), lambda d, f: jodatime.format_datetime(d, f)),
    "hour": ((_DT,), lambda d: d.hour),
    "inTimeZone": ((_DT, _STR), jodatime.in_zone),
    "makeDate": ((_INT, _INT, _INT), lambda y, m, d: dt.datetime(y, m, d, tzinfo=dt.UTC)),
    "makeDateTime": (
        (_INT, _INT, _INT, _INT, _INT),
        lambda y, mo, d, h, mi: dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC),
    ),
    "midnight": ((_DT,), lambda d: jodatime.wall_clock(d, hour=0, minute=0, second=0, microsecond=0)),
    "minute": ((_DT,), lambda d: d.minute),
    "month": ((_DT,), lambda d: d.month),
    "sunday": ((_DT,), lambda d: jodatime.add(d, "days", -((d.weekday() + 1) % 7))),
    "year": ((_DT,), lambda d: d.year),
    "yesterday": ((_DT,), lambda d: jodatime.add(d, "days", -1)),
}
for _unit in ("Years", "Months", "Weeks", "Days", "Hours", "Minutes"):
    FUNCTIONS[f"plus{_unit}"] = ((_DT, _INT), _shift(_unit.lower(), 1))
    FUNCTIONS[f"minus{_unit}"] = ((_DT, _INT), _shift(_unit.lower(), -1))


def check_call(call: Call) -> None:
    """Unknown function or wrong number of arguments: a validation-time error."""
    from ductwork.errors import did_you_mean

    spec = FUNCTIONS.get(call.name)
    if spec is None:
        raise ExpressionError(f"unknown function {call.name!r}.{did_you_mean(call.name, FUNCTIONS)}", call.pos)
    kinds, _ = spec
    if len(call.args) != len(kinds):
        raise ExpressionError(
            f"{call.name}() takes {len(kinds)} argument{'s' if len(kinds) != 1 else ''}, got {len(call.args)}",
            call.pos,
        )
    if call.name == "format" and isinstance(call.args[1], Literal) and isinstance(call.args[1].value, str):
        try:
            jodatime.compile_pattern(call.args[1].value)
        except ValueError as exc:
            raise ExpressionError(str(exc), call.args[1].pos) from None
    if call.name == "inTimeZone" and isinstance(call.args[1], Literal) and isinstance(call.args[1].value, str):
        try:
            jodatime.time_zone(call.args[1].value)
        except ValueError as exc:
            raise ExpressionError(str(exc), call.args[1].pos) from None


def walk(expr: Expr) -> list[Expr]:
    """Every node of an expression, the expression first."""
    out: list[Expr] = [expr]
    if isinstance(expr, Call):
        for arg in expr.args:
            out.extend(walk(arg))
    elif isinstance(expr, BinOp):
        out.extend(walk(expr.left))
        out.extend(walk(expr.right))
    elif isinstance(expr, Neg):
        out.extend(walk(expr.operand))
    return out


def evaluate(expr: Expr, resolve: Resolver) -> Any:
    """The value of an expression; references go through ``resolve``."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Ref):
        return resolve(expr.path, expr.pos)
    if isinstance(expr, Neg):
        value = evaluate(expr.operand, resolve)
        if isinstance(value, list):
            return [_negate(v, expr.pos) for v in value]
        return _negate(value, expr.pos)
    if isinstance(expr, BinOp):
        return _binary(expr.op, evaluate(expr.left, resolve), evaluate(expr.right, resolve), expr.pos)
    check_call(expr)
    kinds, func = FUNCTIONS[expr.name]
    args = [evaluate(a, resolve) for a in expr.args]
    converted: list[Any] = []
    for kind, value, node in zip(kinds, args, expr.args, strict=True):
        if kind == _DT:
            converted.append(_as_datetime(value, expr.name, node.pos))
        elif kind == _INT:
            converted.append(_as_int(value, expr.name, node.pos))
        else:
            converted.append(to_text(value))
    try:
        return func(*converted)
    except (ValueError, OverflowError) as exc:
        raise ExpressionError(f"{expr.name}(): {exc}", expr.pos) from None


def _negate(value: Any, pos: int) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -value
    raise ExpressionError(f"cannot negate {_type_name(value)} {to_text(value)!r}", pos)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return None


def _binary(op: str, left: Any, right: Any, pos: int) -> Any:
    if isinstance(left, list) or isinstance(right, list):
        lefts = left if isinstance(left, list) else None
        rights = right if isinstance(right, list) else None
        if lefts is not None and rights is not None:
            raise ExpressionError(f"cannot apply {op!r} to two lists", pos)
        if lefts is not None:
            return [_binary(op, item, right, pos) for item in lefts]
        assert rights is not None
        return [_binary(op, left, item, pos) for item in rights]
    a, b = _number(left), _number(right)
    if op == "+" and (a is None or b is None):
        return to_text(left) + to_text(right)
    if a is None or b is None:
        bad = left if a is None else right
        raise ExpressionError(f"{op!r} wants numbers, got {_type_name(bad)} {to_text(bad)!r}", pos)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise ExpressionError("division by zero", pos)
        if isinstance(a, int) and isinstance(b, int):
            quotient = abs(a) // abs(b)  # Java's integer division truncates toward zero
            return quotient if (a >= 0) == (b >= 0) else -quotient
        return a / b
    try:
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError) as exc:
        raise ExpressionError(f"'^': {exc}", pos) from None


def render(template: Template, resolve: Resolver) -> str | list[str]:
    """The template's text with every expression evaluated. An expression whose value is a
    list makes the result a list (one text per element); two or more lists are flattened into
    one, as AWS Data Pipeline does."""
    values: list[Any] = [p if isinstance(p, str) else evaluate(p, resolve) for p in template.parts]
    lists = [i for i, v in enumerate(values) if isinstance(v, list)]
    if not lists:
        return "".join(to_text(v) for v in values)
    if len(lists) > 1:
        return [to_text(x) for i in lists for x in values[i]]
    at = lists[0]
    return ["".join(to_text(x) if j == at else to_text(v) for j, v in enumerate(values)) for x in values[at]]
