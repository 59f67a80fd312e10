"""The JSON form of a message: ``to_dict`` / ``from_dict`` derived from the dataclass's fields and their types.

``from_dict`` takes what an older version of the app wrote as well: unknown keys are ignored, a missing key takes the
field's default (declared once, on the field), ``None`` for a field with a default takes the default. A missing key
without a default, or a value of the wrong kind, raises ``MessageError`` naming the message and the field: a typo
in a payload is a clear, permanent error, not a ``KeyError`` deep in a retried activity.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any, Self, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class MessageError(ValueError):
    """A payload that does not make the message it should (a missing or malformed field)."""

    retryable = False


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` as the annotation ``kind`` asks (nested messages, enums, tuples, dicts, numbers, text)."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [k for k in get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where) if len(options) == 1 else value
    if kind is Any:
        return value
    if origin in (tuple, list, dict):
        return _container(kind, origin, value, where)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise MessageError(f"{where}: expected an object, got {type(value).__name__}")
        return from_dict(kind, value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            raise MessageError(f"{where}: {value!r} is not one of {allowed}") from None
    return _scalar(kind, value, where)


def _container(kind: Any, origin: Any, value: Any, where: str) -> Any:
    if origin is dict:
        if not isinstance(value, dict):
            raise MessageError(f"{where}: expected an object, got {type(value).__name__}")
        key_kind, value_kind = get_args(kind) or (Any, Any)
        return {_convert(key_kind, k, where): _convert(value_kind, v, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, list | tuple):
        raise MessageError(f"{where}: expected a list, got {type(value).__name__}")
    item = get_args(kind)[0] if get_args(kind) else Any
    converted = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(converted) if origin is tuple else converted


def _scalar(kind: Any, value: Any, where: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise MessageError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise MessageError(f"{where}: expected a number, got {value!r}")
        try:
            return kind(value)
        except ValueError:
            raise MessageError(f"{where}: expected a number, got {value!r}") from None
    if kind is str:
        if isinstance(value, dict | list):
            raise MessageError(f"{where}: expected text, got {type(value).__name__}")
        return str(value)
    return value


def from_dict(cls: type[T], data: Any) -> T:
    if not isinstance(data, dict):
        raise MessageError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(typing.cast(Any, cls))
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not field.init:
            continue
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        raw = data.get(field.name)
        if raw is None and has_default:
            continue
        if field.name not in data and not has_default:
            raise MessageError(f"{cls.__name__}: missing field {field.name!r}")
        values[field.name] = _convert(hints[field.name], raw, f"{cls.__name__}.{field.name}")
    return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {(k.value if isinstance(k, enum.Enum) else k): _plain(v) for k, v in value.items()}
    return value


class Message:
    """Mixin of the frozen dataclasses that travel as JSON."""

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        return from_dict(cls, data)
