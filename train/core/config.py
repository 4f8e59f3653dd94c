"""Strict dataclass configs with named presets: an unknown key is an error, never ignored."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

from audiosym.errors import ParameterError

C = TypeVar("C")


def _coerce(value: Any, typ: Any, name: str) -> Any:
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ParameterError(f"{name}={value!r} must be true or false")
        return bool(value)
    if typ in (int, float, str):
        try:
            return typ(value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name}={value!r} must be of type {typ.__name__}") from exc
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, name) for v in value) if inner is not Any else tuple(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys raise a ParameterError listing the allowed ones."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParameterError(
            f"unknown {where} key(s) {unknown}; allowed keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def from_record(cls: type[C], record: dict[str, Any]) -> C:
    """``cls`` from a run's recorded config (``config.json``, the checkpoint's ``"config"``): the
    settings plus ``name``, the named config the run started from, which is not a setting."""
    return from_dict(cls, {k: v for k, v in record.items() if k != "name"})


def resolve(cls: type[C], presets: dict[str, dict[str, Any]], name: str, overrides: list[str] | None = None) -> C:
    """Preset ``name`` of ``cls`` with ``key=value`` overrides applied (e.g. ``steps=500``)."""
    if name not in presets:
        raise ParameterError(f"config {name!r} is unknown; choose one of {sorted(presets)}")
    data = dict(presets[name])
    for item in overrides or []:
        if "=" not in item:
            raise ParameterError(f"override {item!r} must look like key=value (e.g. steps=500)")
        key, value = item.split("=", 1)
        data[key.strip()] = value.strip()
    return from_dict(cls, data, where=f"{cls.__name__}")


def to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)
