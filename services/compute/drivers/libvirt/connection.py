"""One libvirt connection for the compute process: every blocking call runs on a thread pool
of its own, lifecycle events arrive on the event loop (libvirtaio), and a connection lost when
libvirtd restarts is opened again (and its event callback registered again) on the next call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt
import libvirtaio

from services.compute.drivers.base import DriverError, InstanceNotFound

log = logging.getLogger(__name__)
R = TypeVar("R")
# (instance id, libvirt lifecycle event, detail), called on the event loop.
LifecycleHandler = Callable[[str, int, int], None]

_event_loop_registered: asyncio.AbstractEventLoop | None = None


def _register_event_impl(loop: asyncio.AbstractEventLoop) -> None:
    """libvirt's event implementation is process-wide and must exist before the first open."""
    global _event_loop_registered
    if _event_loop_registered is None:
        libvirtaio.virEventRegisterAsyncIOImpl(loop=loop)
        _event_loop_registered = loop
    elif _event_loop_registered is not loop:
        raise DriverError("libvirt's events are bound to another event loop of this process (one loop per process)")


def _quiet_errors(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error to stderr by default; ours are raised and logged instead."""


class Connection:
    def __init__(self, uri: str, workers: int) -> None:
        self.uri = uri
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="libvirt")
        self._conn: libvirt.virConnect | None = None
        self._on_lifecycle: LifecycleHandler | None = None
        self._lock = asyncio.Lock()

    async def open(self, on_lifecycle: LifecycleHandler) -> None:
        self._on_lifecycle = on_lifecycle
        _register_event_impl(asyncio.get_running_loop())
        libvirt.registerErrorHandler(_quiet_errors, None)
        await self.conn()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._run(conn.close)
            except libvirt.libvirtError as exc:
                log.warning("closing the libvirt connection: %s", exc)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def conn(self) -> libvirt.virConnect:
        """The open connection, reopened if libvirtd went away."""
        async with self._lock:
            if self._conn is not None and await self._run(self._conn.isAlive):
                return self._conn
            try:
                conn = await self._run(libvirt.open, self.uri)
            except libvirt.libvirtError as exc:
                raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}") from exc
            try:
                await self._run(conn.domainEventRegisterAny, None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                self._lifecycle, None)  # fmt: skip
                await self._run(conn.setKeepAlive, 5, 3)
            except libvirt.libvirtError as exc:
                raise DriverError(f"cannot watch libvirt's events at {self.uri}: {exc.get_error_message()}") from exc
            if self._conn is not None:
                log.warning("reconnected to libvirt at %s", self.uri)
            self._conn = conn
            return conn

    def _lifecycle(self, _conn: Any, dom: libvirt.virDomain, event: int, detail: int, _opaque: Any) -> None:
        if self._on_lifecycle is not None:
            self._on_lifecycle(dom.UUIDString(), event, detail)

    async def call(self, what: str, fn: Callable[..., R], *args: Any) -> R:
        """Runs a blocking libvirt call off the loop; its error becomes a DriverError saying ``what``."""
        try:
            return await self._run(fn, *args)
        except libvirt.libvirtError as exc:
            raise DriverError(f"{what}: {exc.get_error_message()}") from exc

    async def lookup(self, instance_id: str) -> libvirt.virDomain:
        """The domain of the instance (by its UUID, which is the instance id); InstanceNotFound."""
        conn = await self.conn()
        try:
            return await self._run(conn.lookupByUUIDString, instance_id)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFound(instance_id) from exc
            raise DriverError(f"looking up the domain of {instance_id}: {exc.get_error_message()}") from exc
