"""`help(tg.X)` is a reference: every public class and function documents each parameter.

One markup throughout (Google style): a constructor's or function's parameters under `Args:`,
an attrs record's fields under `Attributes:`, each as `name: what it is`.
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

import telegent_async as tg

#: The store and budget protocols' methods are driven by the scheduler and the client, not
#: called by users: these classes document their constructors, the protocols the rest.
_PROTOCOL_CLASSES = (tg.MemoryStore, tg.SQLiteStore, tg.RedisStore, tg.LocalBudget, tg.RedisBudget)


def _modules() -> Iterator[ModuleType]:
    """The package, and each contrib module whose extra is installed."""
    yield tg
    if importlib.util.find_spec("temporalio") and importlib.util.find_spec("cryptography"):
        from telegent_async.contrib import temporal

        yield temporal


def _documented(doc: str) -> set[str]:
    names: set[str] = set()
    for section in re.finditer(r"^(Args|Attributes):\n((?:[ \t]+\S.*\n?|\n)+)", doc, re.M):
        names.update(re.findall(r"^ {4}\*{0,2}(\w+)(?: \(.*?\))?:", section.group(2), re.M))
    return names


def _methods(cls: type) -> dict[str, Callable[..., object]]:
    """The public methods of `cls`, its own and those of the package's bases (a client's
    port-in calls come from one)."""
    found: dict[str, Callable[..., object]] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith(tg.__name__):
            found.update(
                (attr, value)
                for attr, value in vars(klass).items()
                if not attr.startswith("_") and inspect.isfunction(value)
            )
    return found


def _public() -> Iterator[tuple[str, Callable[..., object], str]]:
    for module in _modules():
        yield from _public_of(module)


def _public_of(module: ModuleType) -> Iterator[tuple[str, Callable[..., object], str]]:
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and not issubclass(obj, enum.Enum):
            if "__init__" in vars(obj):  # a constructor of its own (attrs writes one too)
                yield name, vars(obj)["__init__"], inspect.getdoc(obj) or ""
            if obj in _PROTOCOL_CLASSES:
                continue
            for attr, value in _methods(obj).items():
                yield f"{name}.{attr}", value, inspect.getdoc(value) or ""
        elif inspect.isfunction(obj):
            yield name, obj, inspect.getdoc(obj) or ""


def _parameters(function: Callable[..., object]) -> list[str]:
    skip = {"self", "cls"}
    return [p for p in inspect.signature(function).parameters if p not in skip]


PUBLIC = [item for item in _public() if _parameters(item[1])]


@pytest.mark.parametrize(("name", "function", "doc"), PUBLIC, ids=[i[0] for i in PUBLIC])
def test_every_parameter_is_documented(
    name: str, function: Callable[..., object], doc: str
) -> None:
    missing = [p for p in _parameters(function) if p not in _documented(doc)]
    assert not missing, f"{name}: no Args:/Attributes: entry for {missing}"


def test_the_exception_hierarchy_is_drawn_in_errors() -> None:
    from telegent_async import _errors

    tree = _errors.__doc__ or ""
    for name in tg.__all__:
        obj = getattr(tg, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert re.search(rf"\b{name}\b", tree), f"{name} missing from the tree"
