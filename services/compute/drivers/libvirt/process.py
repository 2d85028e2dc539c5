"""Running the host tools (qemu-img, genisoimage) as child processes, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from services.compute.drivers.base import DriverError


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished child process."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def error_text(self) -> str:
        """The child's stderr (or stdout when stderr is empty), decoded and trimmed."""
        text = (self.stderr or self.stdout).decode("utf-8", "replace").strip()
        return text or f"exit status {self.returncode}"


async def _communicate(proc: asyncio.subprocess.Process, timeout_s: float | None) -> tuple[bytes, bytes]:
    try:
        async with asyncio.timeout(timeout_s):
            return await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise


async def run(*argv: str, timeout_s: float | None = None) -> Completed:
    """Runs ``argv`` to completion whatever its exit status; DriverError when it cannot start or
    outlives ``timeout_s``. A cancelled caller kills the child."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise DriverError(f"cannot run {argv[0]}: {e.strerror or e}") from e
    try:
        out, err = await _communicate(proc, timeout_s)
    except TimeoutError:
        raise DriverError(f"{argv[0]} took longer than {timeout_s} s") from None
    return Completed(tuple(argv), await proc.wait(), out, err)


async def check_output(*argv: str, error: type[DriverError] = DriverError, timeout_s: float | None = None) -> bytes:
    """The stdout of ``argv``; ``error`` carrying its stderr when it exits non-zero."""
    done = await run(*argv, timeout_s=timeout_s)
    if done.returncode != 0:
        raise error(f"{' '.join(argv[:2])} failed: {done.error_text}")
    return done.stdout
