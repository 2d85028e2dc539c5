"""``stratus image ...``: bootable disk images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from services.core.cli import output
from services.core.cli.client import open_api
from services.core.cli.lookup import list_all
from services.core.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.core.cli.output import Format, FormatOpt
from services.core.cli.pairs import pairs_option
from services.core.cli.upload import guess_disk_format, upload_requests
from stratus.v1 import images_pb2

app = typer.Typer(help="Images: the disks servers boot from.", no_args_is_help=True)


class DiskFormat(StrEnum):
    raw = "raw"
    qcow2 = "qcow2"


COLUMNS: list[output.Column] = [
    ("ID", lambda i: i.id),
    ("NAME", lambda i: i.name),
    ("STATUS", lambda i: output.enum_label(i, "status")),
    ("SIZE", lambda i: str(i.size_bytes)),
    ("DISK_FORMAT", lambda i: i.disk_format),
    ("PROPERTIES", lambda i: output.mapping(i.properties)),
]


def image_rows(i: images_pb2.Image) -> list[tuple[str, str]]:
    rows = [(header.lower(), get(i)) for header, get in COLUMNS]
    rows += [("checksum", i.checksum), ("container_format", i.container_format), ("owner", i.owner_project_id)]
    return [*rows, ("created_at", output.timestamp(i.created_at))]


@app.command("list")
def list_images(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List images."""
    with open_api(api, token, state_dir) as client:
        images = list_all(client, client.images.ListImages, images_pb2.ListImagesRequest(), "images")
    output.emit_list(fmt, COLUMNS, images)


@app.command("upload")
def upload(
    name: Annotated[str, typer.Argument(help="Image name.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The disk image.")],
    disk_format: Annotated[
        DiskFormat | None, typer.Option("--disk-format", help="Default: qcow2 if the file is one, else raw.")
    ] = None,
    prop: Annotated[
        list[str] | None, typer.Option("--property", metavar="KEY=VALUE", help="Image property (repeatable).")
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Upload an image file, with a progress bar."""
    chosen = disk_format.value if disk_format else guess_disk_format(file)
    metadata = images_pb2.Image(name=name, disk_format=chosen, container_format="bare")
    metadata.properties.update(pairs_option(prop, "--property"))
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with (
        open_api(api, token, state_dir) as client,
        file.open("rb") as fh,
        Progress(*columns, console=output.stderr_console(), transient=True) as progress,
    ):
        task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
        requests = upload_requests(metadata, fh, lambda n: progress.advance(task, n))
        image = client.call(client.images.UploadImage, requests, timeout=None)
    output.emit_one(fmt, image, image_rows)


@app.command("show")
def show(
    image_id: Annotated[str, typer.Argument(metavar="ID", help="Image id.")],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one image."""
    with open_api(api, token, state_dir) as client:
        image = client.call(client.images.GetImage, images_pb2.GetImageRequest(id=image_id))
    output.emit_one(fmt, image, image_rows)


@app.command("delete")
def delete(
    image_id: Annotated[str, typer.Argument(metavar="ID", help="Image id.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete an image."""
    with open_api(api, token, state_dir) as client:
        client.call(client.images.DeleteImage, images_pb2.DeleteImageRequest(id=image_id))
    print(f"image {image_id} deleted")
