"""One libvirt connection for the compute process: every blocking call runs off the event loop
with a timeout (``TimedCalls``: a call libvirt does not answer in time is a CallTimeout and makes the
driver's health degraded), lifecycle events arrive on the event loop (libvirtaio), and a connection
lost when libvirtd restarts is opened again (and its event callback registered again) on the next call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt
import libvirtaio

from services.compute.drivers.base import DriverError, InstanceNotFound
from services.compute.drivers.timed_calls import CallTimeout, TimedCalls

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
    def __init__(self, uri: str, workers: int, timeout_s: float) -> None:
        """At most ``workers`` calls run at once; each gets ``timeout_s`` unless it says otherwise."""
        self.uri = uri
        self.calls = TimedCalls(f"libvirt at {uri}", timeout_s, workers)
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
                await self.calls.run("closing the connection", conn.close)
            except (libvirt.libvirtError, DriverError) as exc:
                log.warning("closing the libvirt connection: %s", exc)

    async def conn(self) -> libvirt.virConnect:
        """The open connection, reopened if libvirtd went away. One caller checks it at a time; the
        wait for another's check is bounded by the call timeout too (CallTimeout)."""
        try:
            async with asyncio.timeout(self.calls.timeout_s):
                await self._lock.acquire()
        except TimeoutError:
            raise CallTimeout(f"libvirt at {self.uri}: another call's check of the connection got no answer "
                              f"within {self.calls.timeout_s:g} s") from None  # fmt: skip
        try:
            return await self._checked_or_opened()
        finally:
            self._lock.release()

    async def _checked_or_opened(self) -> libvirt.virConnect:
        if self._conn is not None and await self.calls.run("checking the connection", self._conn.isAlive):
            return self._conn
        try:
            conn = await self.calls.run("connecting", libvirt.open, self.uri)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}") from exc
        try:
            await self.calls.run("watching domain events", conn.domainEventRegisterAny, None,
                                 libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None)  # fmt: skip
            await self.calls.run("setting keepalive", conn.setKeepAlive, 5, 3)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot watch libvirt's events at {self.uri}: {exc.get_error_message()}") from exc
        if self._conn is not None:
            log.warning("reconnected to libvirt at %s", self.uri)
        self._conn = conn
        return conn

    def _lifecycle(self, _conn: Any, dom: libvirt.virDomain, event: int, detail: int, _opaque: Any) -> None:
        if self._on_lifecycle is not None:
            self._on_lifecycle(dom.UUIDString(), event, detail)

    async def call(self, what: str, fn: Callable[..., R], *args: Any, timeout_s: float | None = None) -> R:
        """Runs a blocking libvirt call off the loop, for at most ``timeout_s`` (the connection's
        default when None): CallTimeout after that; libvirt's error becomes a DriverError saying ``what``."""
        try:
            return await self.calls.run(what, fn, *args, timeout_s=timeout_s)
        except libvirt.libvirtError as exc:
            raise DriverError(f"{what}: {exc.get_error_message()}") from exc

    async def lookup(self, instance_id: str) -> libvirt.virDomain:
        """The domain of the instance (by its UUID, which is the instance id); InstanceNotFound."""
        conn = await self.conn()
        try:
            return await self.calls.run("looking up the domain", conn.lookupByUUIDString, instance_id)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFound(instance_id) from exc
            raise DriverError(f"looking up the domain of {instance_id}: {exc.get_error_message()}") from exc
