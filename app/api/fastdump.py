"""A cheaper `dump` for flat answer schemas on hot API routes.

Marshmallow spends about 2 µs a field (serialize → get_value → _serialize, each a method call), which on
`GET /api/v1/tenant` was a tenth of the route's own cost. `FastDumpSchema` dumps one object through a
plain loop over (key, attribute, converter) prepared once per schema instance, when every field is one
whose output is known exactly: String, Integer, Constant, ISO DateTime, and a List of those. Anything else
(nested schemas, methods and functions, dump defaults, hooks, `many`, a custom accessor) takes
marshmallow's own `dump`, so the answer is always what marshmallow would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing

_NOT_FOUND = object()


def _text(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)  # as marshmallow's String


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _converter(field: fields.Field) -> Callable[[Any], Any] | None:
    """The exact output function for `field`, or None when it is not a simple one."""
    kind = type(field)
    if field.dump_default is not missing:
        return None
    if kind is fields.String:
        return _text
    if kind is fields.Integer and not field.as_string:
        return lambda value: None if value is None else int(value)
    if kind is fields.DateTime and (field.format or "iso") in ("iso", "iso8601"):
        return _iso
    if kind is fields.List and field.inner.dump_default is missing:
        inner = _converter(field.inner)
        if inner is None or isinstance(field.inner, fields.Constant):
            return None
        return lambda value: None if value is None else [inner(each) for each in value]
    return None


def _item(obj: Any, attribute: str) -> Any:
    """marshmallow's lookup for objects with __getitem__: the item, else the attribute."""
    try:
        return obj[attribute]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, attribute, _NOT_FOUND)


class FastDumpSchema(Schema):
    """A Schema whose single-object dump skips marshmallow's per-field machinery when it safely can."""

    _plan: tuple[tuple[str, str, Any, Callable[[Any], Any] | None], ...] | None | bool = False

    def _dump_plan(self) -> tuple | None:
        plan = self._plan
        if plan is not False:
            return plan  # type: ignore[return-value]
        steps: list[tuple[str, str, Any, Callable[[Any], Any] | None]] | None = []
        if (type(self).get_attribute is not Schema.get_attribute or self._hooks["pre_dump"]
                or self._hooks["post_dump"]):
            steps = None
        for name, field in self.dump_fields.items():
            if steps is None:
                break
            key = field.data_key if field.data_key is not None else name
            if type(field) is fields.Constant:
                steps.append((key, "", field.constant, None))  # the constant, whatever the object holds
                continue
            attribute = field.attribute or name
            convert = _converter(field)
            if convert is None or "." in attribute:
                steps = None
                break
            steps.append((key, attribute, _NOT_FOUND, convert))
        self._plan = tuple(steps) if steps is not None else None
        return self._plan  # type: ignore[return-value]

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        plan = self._dump_plan()
        if plan is None or (self.many if many is None else many) or obj is None:
            return super().dump(obj, many=many)
        out = self.dict_class()
        indexable = hasattr(obj, "__getitem__")
        for key, attribute, constant, convert in plan:
            if convert is None:
                out[key] = constant
                continue
            value = _item(obj, attribute) if indexable else getattr(obj, attribute, _NOT_FOUND)
            if value is _NOT_FOUND:  # marshmallow leaves a missing attribute out of the answer
                continue
            out[key] = convert(value)
        return out
