"""``stratus image ...``: bootable disk images, who sees them, and whom they are shared with."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from services.cli import batch, output
from services.cli.client import open_api
from services.cli.lookup import list_all
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from services.cli.pairs import pairs_option
from services.cli.upload import file_sha256, guess_disk_format, upload_requests
from stratus.v1 import images_pb2

app = typer.Typer(help="Images: the disks servers boot from.", no_args_is_help=True)
member_app = typer.Typer(help="The projects a SHARED image is shared with.", no_args_is_help=True)
app.add_typer(member_app, name="member")
Visibility = images_pb2.ImageVisibility


class DiskFormat(StrEnum):
    raw = "raw"
    qcow2 = "qcow2"


COLUMNS: list[output.Column] = [
    ("ID", lambda i: i.id),
    ("NAME", lambda i: i.name),
    ("STATUS", lambda i: output.enum_label(i, "status")),
    ("VISIBILITY", lambda i: output.enum_label(i, "visibility") or "PRIVATE"),
    ("SIZE", lambda i: str(i.size_bytes)),
    ("DISK_FORMAT", lambda i: i.disk_format),
    ("MIN_DISK_GB", lambda i: str(i.min_disk_gb)),
    ("MIN_RAM_MB", lambda i: str(i.min_ram_mb)),
    ("PROPERTIES", lambda i: output.mapping(i.properties)),
]
MEMBER_COLUMNS: list[output.Column] = [
    ("IMAGE_ID", lambda m: m.image_id),
    ("PROJECT_ID", lambda m: m.project_id),
    ("CREATED_AT", lambda m: output.timestamp(m.created_at)),
]

PublicOpt = Annotated[bool, typer.Option("--public", help="Every project sees it (admin only).")]
PrivateOpt = Annotated[bool, typer.Option("--private", help="Only its project sees it (the default).")]
SharedOpt = Annotated[bool, typer.Option("--shared", help="Its project and its members see it.")]
DiskFormatOpt = Annotated[
    DiskFormat | None, typer.Option("--disk-format", help="Default: qcow2 if the file is one, else raw.")
]
PropertyOpt = Annotated[
    list[str] | None, typer.Option("--property", metavar="KEY=VALUE", help="Image property (repeatable).")
]
ImageArg = Annotated[str, typer.Argument(metavar="IMAGE", help="Image id or name.")]
MinDiskOpt = Annotated[
    int | None, typer.Option("--min-disk", metavar="GB", help="The smallest flavor disk it boots from (0: none).")
]
MinRamOpt = Annotated[
    int | None, typer.Option("--min-ram", metavar="MB", help="The smallest flavor RAM it boots with (0: none).")
]


def image_rows(i: images_pb2.Image) -> list[tuple[str, str]]:
    rows = [(header.lower(), get(i)) for header, get in COLUMNS]
    rows += [("virtual_size_bytes", str(i.virtual_size_bytes)), ("checksum", i.checksum),
             ("container_format", i.container_format), ("owner", i.owner_project_id)]  # fmt: skip
    return [*rows, ("created_at", output.timestamp(i.created_at))]


def member_rows(m: images_pb2.ImageMember) -> list[tuple[str, str]]:
    return [(header.lower(), get(m)) for header, get in MEMBER_COLUMNS]


def chosen_visibility(public: bool, private: bool, shared: bool) -> images_pb2.ImageVisibility.ValueType:
    """The visibility the flags ask for (UNSPECIFIED: none given); more than one is an error."""
    flags = [(public, Visibility.IMAGE_VISIBILITY_PUBLIC), (private, Visibility.IMAGE_VISIBILITY_PRIVATE),
             (shared, Visibility.IMAGE_VISIBILITY_SHARED)]  # fmt: skip
    chosen = [value for given, value in flags if given]
    if len(chosen) > 1:
        raise typer.BadParameter("give at most one of --public, --private and --shared")
    return chosen[0] if chosen else Visibility.IMAGE_VISIBILITY_UNSPECIFIED


@app.command("list")
def list_images(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List the images you may see: your project's, those shared with it, and the public ones."""
    with open_api(api, token, state_dir) as client:
        images = list_all(client, client.images.ListImages, images_pb2.ListImagesRequest(), "images")
    output.emit_list(fmt, COLUMNS, images)


def _upload(
    name: str, file: Path, disk_format: DiskFormat | None, prop: list[str] | None,
    visibility: images_pb2.ImageVisibility.ValueType, minimums: tuple[int | None, int | None],
    fmt: Format, api: str | None, token: str | None, state_dir: Path | None,
) -> None:  # fmt: skip
    chosen = disk_format.value if disk_format else guess_disk_format(file)
    metadata = images_pb2.Image(name=name, disk_format=chosen, container_format="bare", visibility=visibility,
                                min_disk_gb=minimums[0] or 0, min_ram_mb=minimums[1] or 0)  # fmt: skip
    metadata.properties.update(pairs_option(prop, "--property"))
    metadata.checksum = file_sha256(file)
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


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Image name.")],
    file: Annotated[
        Path, typer.Option("--file", exists=True, dir_okay=False, readable=True, help="The disk image to upload.")
    ],
    disk_format: DiskFormatOpt = None,
    prop: PropertyOpt = None,
    public: PublicOpt = False,
    private: PrivateOpt = False,
    shared: SharedOpt = False,
    min_disk: MinDiskOpt = None,
    min_ram: MinRamOpt = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create an image from a file (its sha256 is checked by the api), with a progress bar."""
    visibility = chosen_visibility(public, private, shared)
    _upload(name, file, disk_format, prop, visibility, (min_disk, min_ram), fmt, api, token, state_dir)


@app.command("upload")
def upload(
    name: Annotated[str, typer.Argument(help="Image name.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The disk image.")],
    disk_format: DiskFormatOpt = None,
    prop: PropertyOpt = None,
    public: PublicOpt = False,
    private: PrivateOpt = False,
    shared: SharedOpt = False,
    min_disk: MinDiskOpt = None,
    min_ram: MinRamOpt = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Upload an image file (as `image create NAME --file FILE`)."""
    visibility = chosen_visibility(public, private, shared)
    _upload(name, file, disk_format, prop, visibility, (min_disk, min_ram), fmt, api, token, state_dir)


@app.command("show")
def show(
    image: ImageArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one image."""
    with open_api(api, token, state_dir) as client:
        found = client.call(client.images.GetImage, images_pb2.GetImageRequest(id=image))
    output.emit_one(fmt, found, image_rows)


@app.command("set")
def set_image(
    image: ImageArg,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    public: PublicOpt = False,
    private: PrivateOpt = False,
    shared: SharedOpt = False,
    min_disk: MinDiskOpt = None,
    min_ram: MinRamOpt = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Rename an image, change who sees it or set its minimums (its project or an admin)."""
    visibility = chosen_visibility(public, private, shared)
    if not name and not visibility and min_disk is None and min_ram is None:
        raise typer.BadParameter("nothing to change: give --name, --public, --private, --shared, --min-disk "
                                 "or --min-ram")  # fmt: skip
    request = images_pb2.UpdateImageRequest(id=image, name=name or "", visibility=visibility,
                                            min_disk_gb=min_disk, min_ram_mb=min_ram)  # fmt: skip
    with open_api(api, token, state_dir) as client:
        updated = client.call(client.images.UpdateImage, request)
    output.emit_one(fmt, updated, image_rows)


@app.command("delete")
def delete(
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...", help="Image ids or names.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete one or more images; every one is tried, and the exit status is 1 if any failed."""
    with open_api(api, token, state_dir) as client:
        outcome = batch.delete_each(
            "image", images, lambda image: image,  # the api resolves names (in the caller's tiers)
            lambda image: client.call(client.images.DeleteImage, images_pb2.DeleteImageRequest(id=image)),
        )  # fmt: skip
    for image, _ in outcome.done:
        print(f"image {image} deleted")
    batch.exit_if_failed("image", len(images), outcome)


@member_app.command("add")
def member_add(
    image: ImageArg,
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="The project to share it with.")],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Share a SHARED image with a project."""
    with open_api(api, token, state_dir) as client:
        member = client.call(client.images.AddImageMember,
                             images_pb2.AddImageMemberRequest(image_id=image, project_id=project))  # fmt: skip
    output.emit_one(fmt, member, member_rows)


@member_app.command("remove")
def member_remove(
    image: ImageArg,
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="The project to stop sharing it with.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Stop sharing an image with a project."""
    with open_api(api, token, state_dir) as client:
        client.call(client.images.RemoveImageMember,
                    images_pb2.RemoveImageMemberRequest(image_id=image, project_id=project))  # fmt: skip
    print(f"image {image} is no longer shared with project {project}")


@member_app.command("list")
def member_list(
    image: ImageArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """The projects an image is shared with."""
    with open_api(api, token, state_dir) as client:
        reply = client.call(client.images.ListImageMembers, images_pb2.ListImageMembersRequest(image_id=image))
    output.emit_list(fmt, MEMBER_COLUMNS, list(reply.members))
