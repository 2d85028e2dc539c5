"""Output: rich tables for people, JSON (field names as in the protos) for scripts; errors to stderr."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("-f", "--format", help="table for people, json for scripts.")]

Column = tuple[str, Callable[[Any], str]]


def stdout_console() -> Console:
    """Wide enough off a terminal that ids are never cut."""
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    return Console(width=width)


def stderr_console() -> Console:
    return Console(stderr=True)


def err(line: str) -> None:
    print(line, file=sys.stderr)


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def _enum_prefix(enum_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def enum_label(message: Message, field: str) -> str:
    """``status=SERVER_STATUS_ACTIVE`` -> ``ACTIVE``; unspecified -> ``""``."""
    enum_type = message.DESCRIPTOR.fields_by_name[field].enum_type
    if enum_type is None:
        raise TypeError(f"{field} is not an enum field")
    value = enum_type.values_by_number.get(getattr(message, field))
    if value is None or value.number == 0:
        return ""
    return value.name.removeprefix(_enum_prefix(enum_type.name))


def timestamp(ts: timestamp_pb2.Timestamp) -> str:
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")


def mapping(values: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(dict(values).items()))


def print_table(columns: Sequence[Column], items: Iterable[Any]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for item in items:
        table.add_row(*(Text(get(item)) for _, get in columns))
    stdout_console().print(table)


def print_fields(rows: Sequence[tuple[str, str]]) -> None:
    table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    stdout_console().print(table)


def emit_list(fmt: Format, columns: Sequence[Column], items: Sequence[Message]) -> None:
    if fmt is Format.json:
        print_json([to_dict(item) for item in items])
    else:
        print_table(columns, items)


def emit_one(fmt: Format, item: Message, rows: Callable[[Any], Sequence[tuple[str, str]]]) -> None:
    if fmt is Format.json:
        print_json(to_dict(item))
    else:
        print_fields(rows(item))
