"""Option values converted without pydantic, for a fast start-up.

Typer converts each parameter's value with a pydantic ``TypeAdapter`` it builds on first use:
importing pydantic alone is about a tenth of a second of every command's start-up. Nearly every
parameter of the CLI is plain (a str, a Path, an int or a float, a Format or another Enum, a list of
str), and ``speed_up`` gives each such parameter a converter that needs nothing. What that
converter does not take as it is (a value out of bounds, an unknown choice, a number it does not
read) goes to typer's own conversion, which accepts it or refuses it with typer's message; any other
parameter is left to typer. A unit test checks that both give the same values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

INT = re.compile(r"[+-]?\d+")
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class Refused(ValueError):
    """Not a value this converter takes as it is: typer's conversion decides."""


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Refused(value)
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Refused(value)
    return value


def path(value: Any) -> Path:
    if not isinstance(value, str | Path):
        raise Refused(value)
    return Path(value)


def bounded(kind: type, pattern: re.Pattern[str], low: Any, high: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise Refused(value)
        if isinstance(value, str):
            if not pattern.fullmatch(value):
                raise Refused(value)
        elif not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
            raise Refused(value)
        number = kind(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise Refused(value)  # typer's message says the bounds
        return number

    return convert


def choice(enum: type[Enum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            raise Refused(value) from None

    return convert


def converter(descriptor: Any) -> Callable[[Any], Any] | None:
    """A converter for a parameter's ``type_descriptor``, or None to leave it to typer."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or getattr(info, "parser", None) or getattr(info, "click_type", None):
        return None
    annotation = descriptor.annotation
    if descriptor.is_list:
        args = getattr(annotation, "__args__", ())
        return text if args == (str,) else None
    if annotation is str:
        return text
    if annotation is bool:
        return flag
    if annotation is Path:
        plain = not any(getattr(info, name, False) for name in ("exists", "resolve_path", "writable", "allow_dash"))
        plain = plain and getattr(info, "file_okay", True) and getattr(info, "dir_okay", True)
        plain = plain and getattr(info, "readable", True) and getattr(info, "path_type", None) is None
        return path if plain else None
    if annotation in (int, float):
        if getattr(info, "clamp", False):
            return None
        pattern = INT if annotation is int else FLOAT
        return bounded(annotation, pattern, getattr(info, "min", None), getattr(info, "max", None))
    if isinstance(annotation, type) and issubclass(annotation, Enum) and getattr(info, "case_sensitive", True):
        return choice(annotation)
    return None


class Plain:
    """Typer's runtime conversion contract (``coerce``) for a plain parameter."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multiple = param.multiple or param.nargs == -1
        if value is None:
            return () if multiple else None
        try:
            if multiple:
                if isinstance(value, str) or not isinstance(value, list | tuple):
                    raise Refused(value)
                return [self.convert(item) for item in value]
            return self.convert(value)
        except Refused:
            param._runtime_param = None  # typer's own from here on
            return param.get_runtime_param().coerce(value, param=param, ctx=ctx)


def speed_up_param(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", "unknown") is not None:
        return
    if not callable(getattr(param, "get_runtime_param", None)):
        return
    convert = converter(descriptor)
    if convert is not None:
        param._runtime_param = Plain(convert)


def speed_up(command: Any) -> Any:
    """Gives each plain parameter of ``command`` (``--help`` too, which the command makes once
    and keeps) and of the commands of a group, already made, a converter without pydantic; returns
    ``command``. Leaves typer alone where it does not know its parameters (another typer version:
    only slower)."""
    import typer

    for param in getattr(command, "params", ()):
        speed_up_param(param)
    if getattr(command, "add_help_option", False) and callable(getattr(command, "get_help_option", None)):
        speed_up_param(command.get_help_option(typer.Context(command)))
    for sub in getattr(command, "commands", {}).values():
        speed_up(sub)
    return command
