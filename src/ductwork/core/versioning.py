"""Content fingerprints of a try, for incremental recomputation (``cache="content"``).

A try's fingerprint has three parts, each a mapping of names to short hashes so that a change
can be named, not just detected:

- ``code``: the source of the task's callable, of the functions of the same module it calls
  (followed through their own calls and through decorators), their default argument values, and
  the module-level constants they read (``LIMIT = 5``),
  and the content of the user modules (files outside the
  standard library and site-packages) it uses and of the user modules those import; for other
  operators, their class and their unrendered templated fields (a Bash command), for class
  tasks the source of the class;
- ``params``: the run parameters the task reads (``param:NAME``) and its literal arguments;
- ``inputs``: the results of upstream tasks (``task:ID``) and the versions of its inlets
  (``asset:URI``: a file's size and modification time, an object's ETag...).

Two tries with equal fingerprints would compute the same thing, so the later one reuses the
earlier one's results instead of running. Everything here is pure apart from reading source
files; the versions of assets are read by ``ductwork.integrations.fingerprints``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Protocol

from ductwork.errors import DefinitionError

CACHE_MODES = ("content",)
HASH_CHARS = 16


def check_cache_mode(value: Any, *, where: str) -> str | None:
    if value is None or value is False:
        return None
    if value not in CACHE_MODES:
        raise DefinitionError(f'{where}: cache={value!r} is not a cache mode; use cache="content" or leave it out')
    return str(value)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def value_hash(value: Any) -> str:
    """A stable hash of a value: canonical JSON when it is JSON data, else its pickle."""
    try:
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()
        return digest(b"j" + data)
    except (TypeError, ValueError):
        pass
    try:
        return digest(b"p" + pickle.dumps(value, protocol=4))
    except Exception:
        return digest(b"r" + repr(value).encode())


@dataclass(frozen=True)
class Fingerprint:
    code: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """One hash of the three parts: equal keys, equal work."""
        data = json.dumps([self.code, self.params, self.inputs], sort_keys=True, separators=(",", ":"))
        return digest(data.encode())

    def to_dict(self) -> dict[str, Any]:
        return {"code": dict(self.code), "params": dict(self.params), "inputs": dict(self.inputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        return cls(dict(data.get("code", {})), dict(data.get("params", {})), dict(data.get("inputs", {})))


@dataclass(frozen=True)
class Change:
    """One difference between a try's fingerprint and the one it is compared with."""

    part: str
    """``code``, ``params`` or ``inputs``; ``results`` when nothing differed but the matching
    try's results could not be read (``name`` is its run); ``outputs`` when an asset it writes
    (an outlet) is gone since (``name`` is the asset's URI)."""
    name: str
    what: str
    """``changed``, ``added`` or ``removed`` (``gone`` or ``cleared`` for results)."""

    def describe(self) -> str:
        if self.part == "results" and self.what == "cleared":
            return "it was cleared in this run (the clear deleted the results of its earlier try)"
        if self.part == "results":
            return f"the results of run {self.name}, whose try matched, could not be read"
        if self.part == "outputs":
            return f"its output {self.name!r} is gone"
        label = {"code": "code", "params": "parameter", "inputs": "input"}[self.part]
        name = self.name.split(":", 1)[1] if ":" in self.name else self.name
        if self.part == "code":
            return f"code {self.what}: {name}"
        return f"{label} {name!r} {self.what}"

    def to_dict(self) -> dict[str, str]:
        return {"part": self.part, "name": self.name, "what": self.what, "text": self.describe()}


def compare(new: Fingerprint, old: Fingerprint) -> list[Change]:
    """What differs between two fingerprints, part by part, names sorted."""
    out: list[Change] = []
    for part in ("code", "params", "inputs"):
        a, b = getattr(new, part), getattr(old, part)
        for name in sorted(set(a) | set(b)):
            if name not in b:
                out.append(Change(part, name, "added"))
            elif name not in a:
                out.append(Change(part, name, "removed"))
            elif a[name] != b[name]:
                out.append(Change(part, name, "changed"))
    return out


# --- code versions ---------------------------------------------------------------------------
def _stdlib_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get("stdlib"), paths.get("platstdlib"), paths.get("purelib"), paths.get("platlib")}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(str(Path(r).resolve()) for r in roots if r)


_ROOTS: tuple[str, ...] | None = None
_OWN_PACKAGE = os.path.join(str(Path(__file__).resolve().parent.parent), "")
"""Ductwork's own modules (not the user's, even in a folder named ``ductwork``)."""
_FILE_HASHES: dict[tuple[str, int], str] = {}


def is_user_file(file: str | None) -> bool:
    """A module file of the user's own (not the standard library, site-packages or Ductwork)."""
    global _ROOTS
    if not file or not file.endswith(".py"):
        return False
    if _ROOTS is None:
        _ROOTS = _stdlib_roots()
    resolved = str(Path(file).resolve())
    return not resolved.startswith(_ROOTS) and not resolved.startswith(_OWN_PACKAGE)


def file_hash(file: str) -> str:
    """A source file's content hash, remembered per modification time (a warm worker asks again
    and again)."""
    path = Path(file)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return "missing"
    cached = _FILE_HASHES.get((file, stamp))
    if cached is None:
        cached = _FILE_HASHES[(file, stamp)] = digest(path.read_bytes())
    return cached


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:
            return repr((code.co_code, code.co_consts, code.co_names))
        return repr(obj)


def _names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def code_parts(func: Callable[..., Any]) -> dict[str, str]:
    """``code:<qualname>`` for the callable and each same-module function it reaches, and
    ``module:<name>`` for each user module (outside the standard library and site-packages)
    whose objects it uses."""
    func = inspect.unwrap(func)
    home = getattr(func, "__module__", None)
    out: dict[str, str] = {}
    seen: set[int] = set()
    stack: list[Any] = [func]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = getattr(current, "__qualname__", None) or getattr(current, "__name__", repr(current))
        out[f"code:{name}"] = digest(_source(current).encode())
        defaults = _defaults(current)
        if defaults is not None:  # def load(path=DATA_PATH): the value is bound where it is defined
            out[f"code:{name} (default arguments)"] = digest(defaults.encode())
        code = getattr(current, "__code__", None)
        scope = getattr(current, "__globals__", None)
        if code is None or scope is None:
            continue
        for ref in dict.fromkeys(_names(code)):
            target = scope.get(ref)
            if target is None:
                continue
            constant = _constant(target)
            if constant is not None:  # LIMIT = 5 in the task's module: part of its code
                out[f"code:{ref}"] = digest(constant.encode())
                continue
            if isinstance(target, types.ModuleType):
                _add_user_modules(out, target, home)
                continue
            module = getattr(target, "__module__", None)
            if isinstance(target, types.FunctionType | type) and module == home:
                stack.append(target)
                inner = _wrapped(target)
                if inner is not target:  # a decorated helper: the wrapper's code names none of its body's
                    stack.append(inner)
            elif module and module != home:
                mod = sys.modules.get(module)
                if mod is not None:
                    _add_user_modules(out, mod, home)
    return out


def _wrapped(func: Any) -> Any:
    """The function a decorator (``functools.wraps``) wraps, else ``func``. A helper reached by
    name is the wrapper, whose code calls ``f``: the constants and functions the helper's own body
    reads were not followed, so changing them reused a stale result."""
    try:
        return inspect.unwrap(func)
    except ValueError:  # a cycle of __wrapped__
        return func


def _defaults(func: Any) -> str | None:
    """A function's default argument values as stable text (None without any). They are
    evaluated where the function is defined (``def load(limit=LIMIT)``), so the names they read
    are not in its code, and its source does not change when ``LIMIT`` does; a value with no
    stable text (an object) counts by its type."""
    keywords = getattr(func, "__kwdefaults__", None) or {}
    named = [(str(i), v) for i, v in enumerate(getattr(func, "__defaults__", None) or ())]
    named += [(key, keywords[key]) for key in sorted(keywords)]
    if not named:
        return None
    return repr([(key, _constant(v) or type(v).__qualname__) for key, v in named])


def _constant(value: Any, depth: int = 0) -> str | None:
    """A module-level constant's value as stable text (numbers, strings, paths and containers of
    them); None for anything else (functions, clients, objects whose repr names an address)."""
    if value is None or isinstance(value, bool | int | float | str | bytes | PurePath):
        return f"{type(value).__name__}:{value!r}"
    if depth > 4 or not isinstance(value, tuple | list | dict | set | frozenset) or len(value) > 10_000:
        return None
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    parts = []
    for key, item in items:
        texts = (_constant(key, depth + 1), _constant(item, depth + 1))
        if texts[1] is None or (key is not None and texts[0] is None):
            return None
        parts.append(f"{texts[0]}={texts[1]}" if key is not None else str(texts[1]))
    if isinstance(value, set | frozenset | dict):
        parts.sort()
    return f"{type(value).__name__}:[{','.join(parts)}]"


def _add_user_modules(out: dict[str, str], module: types.ModuleType, home: str | None) -> None:
    """``module:<name>`` for ``module`` when it is the user's, and for the user modules it uses
    in turn (a helper's own helpers), whose changes change what it computes."""
    pending = [module]
    while pending:
        current = pending.pop()
        name = current.__name__
        file = getattr(current, "__file__", None)
        if name == home or f"module:{name}" in out or not is_user_file(file):
            continue
        out[f"module:{name}"] = file_hash(str(file))
        for value in list(vars(current).values()):
            if isinstance(value, types.ModuleType):
                pending.append(value)
            elif isinstance(value, types.FunctionType | type):
                used = sys.modules.get(getattr(value, "__module__", None) or "")
                if used is not None:
                    pending.append(used)


def class_code_parts(cls: type) -> dict[str, str]:
    """For a class task: the class's source, and the user modules its methods use."""
    out = {f"code:{cls.__qualname__}": digest(_source(cls).encode())}
    for attr in ("run", "requires", "output"):
        method = cls.__dict__.get(attr)
        if isinstance(method, types.FunctionType):
            for name, value in code_parts(method).items():
                if name.startswith("module:"):
                    out[name] = value
    return out


# --- where fingerprints are kept --------------------------------------------------------------
@dataclass(frozen=True)
class CacheEntry:
    """A recorded try of a cached task."""

    run_id: str
    task_id: str
    try_number: int
    fingerprint: Fingerprint
    status: str
    """``ran`` (its code ran) or ``reused`` (it took the results of ``matched_run_id``)."""
    succeeded: bool
    result_keys: tuple[str, ...] = ()
    matched_run_id: str | None = None
    changes: tuple[Mapping[str, str], ...] = ()
    created_at: Any = None


class CacheStore(Protocol):
    """The port the engine uses to find earlier tries and record new ones (the store implements it)."""

    def find(self, flow_id: str, task_id: str, *, cache_key: str | None = None) -> CacheEntry | None:
        """The latest successful try of the task, with this cache key when one is given."""
        ...

    def record(self, run_key: str, entry: CacheEntry) -> None: ...
