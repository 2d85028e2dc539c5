"""Output as python-openstackclient does it: ``-f table|json|yaml|value`` and ``-c COLUMN``.

Tables are for people; ``value`` prints the bare values (a list: one row per line, columns
space-separated; one item: one value per line); json and yaml print the messages with the protos'
field names and enum words as the tables show them (``ACTIVE``, not ``SERVER_STATUS_ACTIVE``).
``-c`` names a table column by its header or a field by its name, in any case; for json and yaml it
selects fields. Errors go to stderr."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

if TYPE_CHECKING:  # rich and protobuf's json_format are imported where used: a fast start-up
    from google.protobuf import timestamp_pb2
    from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
    from google.protobuf.message import Message
    from rich.console import Console


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    value = "value"


FormatOpt = Annotated[
    Format,
    typer.Option("-f", "--format", help="table for people; json, yaml or value (bare values) for scripts."),
]

Column = tuple[str, Callable[[Any], str]]

# The -c names of the command being run; set by ColumnsOpt's callback before the command runs.
_selection: list[str] = []


def select_columns(names: Sequence[str] | None) -> list[str]:
    """Remembers the ``-c`` names for ``emit_list``/``emit_one`` (ColumnsOpt's callback)."""
    _selection[:] = list(names or [])
    return list(_selection)


def selected_columns() -> list[str]:
    return list(_selection)


ColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-c",
        "--column",
        metavar="COLUMN",
        callback=select_columns,
        help="Only this column (repeatable): a table header, or a field name for json and yaml.",
        show_default=False,
    ),
]


def stdout_console() -> Console:
    """Wide enough off a terminal that ids are never cut."""
    from rich.console import Console

    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    return Console(width=width)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def err(line: str) -> None:
    print(line, file=sys.stderr)


def _enum_prefix(enum_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def enum_word(enum_type: EnumDescriptor, number: int) -> str:
    """``(ServerStatus, 2)`` -> ``ACTIVE``; unspecified -> ``""``; an unknown number as digits."""
    value = enum_type.values_by_number.get(number)
    if value is None:
        return str(number)
    if value.number == 0:
        return ""
    return value.name.removeprefix(_enum_prefix(enum_type.name))


def enum_label(message: Message, field: str) -> str:
    """``status=SERVER_STATUS_ACTIVE`` -> ``ACTIVE``; unspecified -> ``""``."""
    enum_type = message.DESCRIPTOR.fields_by_name[field].enum_type
    if enum_type is None:
        raise TypeError(f"{field} is not an enum field")
    return enum_word(cast("EnumDescriptor", enum_type), getattr(message, field))


def _json_enum(enum_type: EnumDescriptor, value: Any) -> Any:
    """An enum as MessageToDict gives it (its name; a number it does not know) -> its word, None
    when unspecified, or the unknown number as it is."""
    if not isinstance(value, str):
        return value
    return enum_word(enum_type, enum_type.values_by_name[value].number) or None


def _json_value(field: FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None:
        return _json_enum(field.enum_type, value)
    message_type = field.message_type
    if message_type is not None and isinstance(value, dict) and not message_type.full_name.startswith("google."):
        return _words(message_type, value)
    return value


def _words(descriptor: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    """Rewrites every enum of ``data`` (a MessageToDict of ``descriptor``), nested ones too."""
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value_field = message_type.fields_by_name["value"]
            data[field.name] = {k: _json_value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            data[field.name] = [_json_value(field, v) for v in value]
        else:
            data[field.name] = _json_value(field, value)
    return data


def to_dict(message: Message) -> dict[str, Any]:
    """The message with the protos' field names, every field, and enums as words (None: unspecified)."""
    from google.protobuf import json_format

    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _words(cast("Descriptor", message.DESCRIPTOR), data)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def print_yaml(value: Any) -> None:
    import yaml  # only when asked for: keeps the CLI's start-up fast

    sys.stdout.write(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False))
    sys.stdout.flush()


def timestamp(ts: timestamp_pb2.Timestamp) -> str:
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")


def mapping(values: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(dict(values).items()))


def column_key(name: str) -> str:
    """``Server Group``, ``server-group`` and ``SERVER_GROUP`` name the same column."""
    return re.sub(r"[\s_-]+", "_", name.strip()).lower()


def pick(wanted: Sequence[str], available: Sequence[str]) -> list[int]:
    """The positions of the ``wanted`` names among ``available``; an unknown name is a usage error (exit 2)."""
    index: dict[str, int] = {}
    for i, name in enumerate(available):
        index.setdefault(column_key(name), i)
    unknown = [name for name in wanted if column_key(name) not in index]
    if unknown:
        raise typer.BadParameter(
            f"no column {', '.join(map(repr, unknown))}; the columns are: {', '.join(available)}", param_hint="'-c'"
        )
    return [index[column_key(name)] for name in wanted]


def _pick_fields(data: Mapping[str, Any], fields: Sequence[str], wanted: Sequence[str]) -> dict[str, Any]:
    return {fields[i]: data.get(fields[i]) for i in pick(wanted, fields)}


def _field_names(message: Message, data: Mapping[str, Any]) -> list[str]:
    return [f.name for f in message.DESCRIPTOR.fields] + [k for k in data if k not in message.DESCRIPTOR.fields_by_name]


def print_table(columns: Sequence[Column], items: Iterable[Any]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for item in items:
        table.add_row(*(Text(get(item)) for _, get in columns))
    stdout_console().print(table)


def print_fields(rows: Sequence[tuple[str, str]]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    stdout_console().print(table)


def print_lines(lines: Iterable[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def dump(fmt: Format, value: Any) -> None:
    """json or yaml."""
    if fmt is Format.yaml:
        print_yaml(value)
    else:
        print_json(value)


Extra = Callable[[Any], Mapping[str, Any]]  # what json and yaml add to a message (names beside ids)


def with_extra(data: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``more``: a ``<x>_name`` right after ``<x>_id`` when there is one, else at the end."""
    out: dict[str, Any] = {}
    placed = {f"{key.removesuffix('_name')}_id": key for key in more if key.endswith("_name")}
    for key, value in data.items():
        out[key] = value
        if key in placed and placed[key] not in data:
            out[placed[key]] = more[placed[key]]
    for key, value in more.items():
        out.setdefault(key, value)
    return out


def message_dict(item: Message, extra: Extra | None) -> dict[str, Any]:
    data = to_dict(item)
    return with_extra(data, extra(item)) if extra else data


def emit_list(
    fmt: Format,
    columns: Sequence[Column],
    items: Sequence[Message],
    select: Sequence[str] | None = None,
    extra: Extra | None = None,
) -> None:
    """A list: a table (or bare rows) of ``columns``, or the messages (with ``extra``'s fields);
    ``select`` (default: ``-c``) narrows it."""
    wanted = selected_columns() if select is None else list(select)
    if fmt in (Format.json, Format.yaml):
        data = [message_dict(item, extra) for item in items]
        if wanted and items:
            fields = _field_names(items[0], data[0])
            data = [_pick_fields(d, fields, wanted) for d in data]
        dump(fmt, data)
        return
    if wanted:
        columns = [columns[i] for i in pick(wanted, [header for header, _ in columns])]
    if fmt is Format.value:
        print_lines(" ".join(get(item) for _, get in columns) for item in items)
    else:
        print_table(columns, items)


def emit_one(
    fmt: Format,
    item: Message,
    rows: Callable[[Any], Sequence[tuple[str, str]]],
    select: Sequence[str] | None = None,
    extra: Extra | None = None,
) -> None:
    """One item: its ``rows`` as a two-column table (or bare values, one a line), or the message
    (with ``extra``'s fields)."""
    wanted = selected_columns() if select is None else list(select)
    if fmt in (Format.json, Format.yaml):
        data = message_dict(item, extra)
        dump(fmt, _pick_fields(data, _field_names(item, data), wanted) if wanted else data)
        return
    shown = list(rows(item))
    if wanted:
        shown = [shown[i] for i in pick(wanted, [name for name, _ in shown])]
    if fmt is Format.value:
        print_lines(value for _, value in shown)
    else:
        print_fields(shown)


def emit_data(fmt: Format, data: Mapping[str, Any], select: Sequence[str] | None = None) -> None:
    """A dict for json, yaml or value (its values, one a line; nested ones as JSON)."""
    wanted = selected_columns() if select is None else list(select)
    chosen = _pick_fields(data, list(data), wanted) if wanted else dict(data)
    if fmt is Format.value:
        print_lines(v if isinstance(v, str) else json.dumps(v) for v in chosen.values())
    else:
        dump(fmt, chosen)
