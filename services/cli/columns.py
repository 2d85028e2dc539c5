"""``-c COLUMN`` on every command that takes ``-f``, and ``-f`` given before the command
(``stratus -f json server list``): each such command gets a ColumnsOpt parameter and the context.

A command declares ``fmt: FormatOpt`` and calls ``output.emit_list``/``emit_one``; ``add_column_option``
(called on each group as it is loaded) gives it ``-c``, whose callback tells ``output`` the chosen
columns. A command that declares its own ``columns: ColumnsOpt``, or a ``-c`` of another meaning, is
left as it is."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, get_args

import typer

from services.cli import options
from services.cli.output import ColumnsOpt, Format, FormatOpt

COLUMNS_PARAM = "columns"
CONTEXT_PARAM = "stratus_context"
FORMAT_PARAM = "fmt"


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


def given_format(ctx: Any, fmt: Any) -> Any:
    """The command's ``-f``, else the one before the command, else the command's default."""
    before = options.given().fmt
    if before is None or ctx is None:
        return fmt
    source = ctx.get_parameter_source(FORMAT_PARAM)
    return Format(before) if source is None or source.name in ("DEFAULT", "DEFAULT_MAP") else fmt


def with_columns(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a ``-c`` option (its value reaches ``output`` through the option's callback)
    and the ``-f`` given before the command when it has none of its own."""
    if not takes_format(func):
        return func
    signature = inspect.signature(func, eval_str=True)
    if any("-c" in declared_names(p.annotation) for p in signature.parameters.values()):
        return func  # -c means something else here

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop(COLUMNS_PARAM, None)
        ctx = kwargs.pop(CONTEXT_PARAM, None)
        if FORMAT_PARAM in kwargs:
            kwargs[FORMAT_PARAM] = given_format(ctx, kwargs[FORMAT_PARAM])
        return func(*args, **kwargs)

    keyword = inspect.Parameter.KEYWORD_ONLY
    extra = [
        inspect.Parameter(COLUMNS_PARAM, keyword, default=None, annotation=ColumnsOpt),
        inspect.Parameter(CONTEXT_PARAM, keyword, default=None, annotation=typer.Context),
    ]
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    command.__annotations__ = {**func.__annotations__, COLUMNS_PARAM: ColumnsOpt, CONTEXT_PARAM: typer.Context}
    return command


def add_column_option(app: typer.Typer) -> None:
    """Gives ``-c`` to every command of ``app`` and its sub-apps that takes ``-f``."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = with_columns(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_column_option(group.typer_instance)
