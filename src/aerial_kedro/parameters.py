"""What the typed parameter settings share: a failure as one line naming the key.

Each pipeline's settings (:mod:`aerial_kedro.chips.settings`,
:mod:`aerial_kedro.pipelines.assess.settings`) is a frozen pydantic model whose fields carry
their check in their type. Pydantic reports a failure as a multi-line ``ValidationError`` in its
own words; users see instead one :class:`~aerial_kedro.errors.ParameterError` line in the words
the project always used::

    scoring.chip_px: 'abc' is not an integer >= 1

:func:`one_line` writes that line from pydantic's first error and the field's :class:`Says`;
:func:`validated` builds a model or raises that line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from aerial_kedro.errors import ParameterError

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Says:
    """How any failure of a field reads after ``<key>: ``; ``{value}`` is the value given,
    ``{key}`` the full key.

    Attached to a field's type (``Annotated`` metadata, which pydantic ignores), so the
    message lives beside the constraint it explains.
    """

    template: str


Flag = Annotated[bool, Says("'{value}' is not true or false")]
Count = Annotated[int, Field(ge=1), Says("'{value}' is not an integer >= 1")]
FieldName = Annotated[str, Field(pattern=r"\S"), Says("'{value}' is not a field name")]


def _in_unit_interval(allow_one: bool) -> WrapValidator:
    """A number (the type's own check), then in (0, 1) or (0, 1]; the message shows the value as
    given (``1.5 is outside (0, 1]``)."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> float:
        number = handler(value)
        if not (0.0 < number < 1.0 or (allow_one and number == 1.0)):
            raise ValueError(f"{value} is outside (0, {'1]' if allow_one else '1)'}")
        return number

    return WrapValidator(check)


OpenFraction = Annotated[
    float, _in_unit_interval(False), Says("'{value}' is not a number in (0, 1)")
]
Fraction = Annotated[float, _in_unit_interval(True), Says("'{value}' is not a number in (0, 1]")]


def choice(values: tuple[str, ...]) -> Any:
    """A field taking one of ``values``; anything else reads ``'x' is not allowed; allowed values: ...``."""
    return Annotated[
        Literal[values],  # Literal[("a", "b")] == Literal["a", "b"]
        Says(f"'{{value}}' is not allowed; allowed values: {', '.join(values)}"),
    ]


def validated(model: type[Model], raw: Mapping[str, Any], key: Callable[[str], str]) -> Model:
    """``raw`` as ``model``, or :class:`~aerial_kedro.errors.ParameterError`: :func:`one_line`
    of pydantic's first error, ``key`` naming a field as the user wrote it."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ParameterError(one_line(model, error.errors()[0], raw, key)) from None


def one_line(
    model: type[BaseModel],
    error: ErrorDetails,
    raw: Mapping[str, Any],
    key: Callable[[str], str],
) -> str:
    """``<key>: <what is wrong>`` for pydantic's first ``error`` validating ``raw`` as ``model``.

    ``key`` names a field as the user wrote it (``scoring.chip_px``, ``reference_class_field``).
    A validator's ``ValueError`` is its own message: after the key, or the whole line when it
    comes from a model validator or already names a key inside the field
    (``featurization.options.precision: ...``). Any other failure of a field (wrong type, out of
    range, missing) reads as the field's :class:`Says`, with the value as given.
    """
    message = str(error.get("ctx", {}).get("error", error["msg"]))
    if not error["loc"]:  # a model validator
        return message.replace("\n", " ")
    field = str(error["loc"][0])
    if error["type"] == "extra_forbidden":  # a typo must not be ignored silently
        return f"{key(field)}: {unknown_key(field, model.model_fields)}"
    says = field_says(model.model_fields[field])
    if error["type"] == "value_error":
        if message.startswith(f"{key(field)}."):
            return message.replace("\n", " ")
        detail = message
    elif says is not None:
        detail = says.template.format(value=raw.get(field), key=key(field))
    else:
        detail = error["msg"]
    return f"{key(field)}: {detail}".replace("\n", " ")


def unknown_key(field: str, known: Iterable[str]) -> str:
    """What an unknown parameter key reads as: the closest known keys, or all of them."""
    names = sorted(known)
    close = difflib.get_close_matches(field, names, n=3, cutoff=0.6)
    if close:
        return f"not a parameter here; did you mean {' or '.join(close)}?"
    return f"not a parameter here; known: {', '.join(names)}"


def field_says(field: FieldInfo) -> Says | None:
    """The :class:`Says` of a field, also when its type is wrapped (``Count | None``)."""
    pending: list[Any] = [*field.metadata, field.annotation]
    while pending:
        item = pending.pop(0)
        if isinstance(item, Says):
            return item
        pending.extend(getattr(item, "__metadata__", ()))
        pending.extend(get_args(item))
    return None
