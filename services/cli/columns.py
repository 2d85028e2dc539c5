"""``-c COLUMN`` on every command that takes ``-f``: each such command gets a ColumnsOpt parameter.

A command declares ``fmt: FormatOpt`` and calls ``output.emit_list``/``emit_one``; ``add_column_option``
(called once the app is assembled) gives it ``-c``, whose callback tells ``output`` the chosen
columns. A command that declares its own ``columns: ColumnsOpt`` is left as it is."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, get_args

import typer

from services.cli.output import ColumnsOpt, FormatOpt

COLUMNS_PARAM = "columns"


def takes_format(func: Callable[..., Any]) -> bool:
    annotations = getattr(func, "__annotations__", {})
    fmt = annotations.get("fmt")
    named = isinstance(fmt, str) and fmt.rpartition(".")[2] == "FormatOpt"  # postponed annotations
    return (named or fmt is FormatOpt) and COLUMNS_PARAM not in annotations


def declared_names(annotation: Any) -> list[str]:
    """The option names an ``Annotated[..., typer.Option(...)]`` declares (in ``Annotated``, typer
    keeps the first name in ``default``)."""
    names: list[str] = []
    for info in get_args(annotation)[1:]:
        first = getattr(info, "default", None)
        names += [first] if isinstance(first, str) and first.startswith("-") else []
        names += getattr(info, "param_decls", None) or []
    return names


def with_columns(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a ``-c`` option (its value reaches ``output`` through the option's callback)."""
    if not takes_format(func):
        return func
    signature = inspect.signature(func, eval_str=True)
    if any("-c" in declared_names(p.annotation) for p in signature.parameters.values()):
        return func  # -c means something else here

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop(COLUMNS_PARAM, None)
        return func(*args, **kwargs)

    extra = inspect.Parameter(COLUMNS_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ColumnsOpt)
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    command.__annotations__ = {**func.__annotations__, COLUMNS_PARAM: ColumnsOpt}
    return command


def add_column_option(app: typer.Typer) -> None:
    """Gives ``-c`` to every command of ``app`` and its sub-apps that takes ``-f``."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = with_columns(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_column_option(group.typer_instance)
