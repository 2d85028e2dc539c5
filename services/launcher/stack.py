"""``stratus up`` from start to stop: etcd, tokens, children, readiness, stack.json, supervision."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from functools import partial

from services.core.etcd import EtcdTls, Store
from services.core.supervise import spawn_supervised
from services.core.tls import TlsFiles
from services.launcher import etcd_proc
from services.launcher.certs import default_sans, ensure_stack_tls
from services.launcher.children import log_tail, stop_all
from services.launcher.credentials import SERVICE_TOKEN_FILE, ensure_service_token, ensure_tokens
from services.launcher.etcd_upkeep import local_etcd_upkeep
from services.launcher.lock import StateDirLock
from services.launcher.options import LaunchError, StackOptions
from services.launcher.plan import STOP_ORDER, TlsPlan, api_ports, etcd_tls_of, plan_etcd, plan_services
from services.launcher.ports import port_is_free
from services.launcher.registry import ETCD_DOWN, not_serving, read_services, release_dead, take_registrations
from services.launcher.stackfile import BadStackFile, StackInfo, read_stack, remove_stack, stack_path, write_stack
from services.launcher.summary import print_summary
from services.launcher.supervise import follow_registrations, keep_running, pause
from services.launcher.supervised import Supervised

log = logging.getLogger("stratus.up")


def etcd_tls_files(tls: EtcdTls | None) -> dict[str, str]:
    if tls is None or tls.cert is None or tls.key is None:
        return {}
    return {"ca": str(tls.ca), "cert": str(tls.cert), "key": str(tls.key)}
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


class Stack:
    def __init__(self, opts: StackOptions) -> None:
        self.opts = opts
        self.path = stack_path(opts.state_dir)
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()
        self.etcd: Supervised | None = None
        self.etcd_urls: tuple[str, ...] = opts.etcd
        self.services: list[Supervised] = []
        self.store: Store | None = None
        self.tokens = ("", "")
        self.tls: TlsPlan | None = None
        self.etcd_server_tls: TlsFiles | None = None

    async def run(self) -> int:
        """Runs until SIGINT/SIGTERM (0) or a failed start (1)."""
        lock = StateDirLock(self.opts.state_dir)
        lock.acquire()
        self._install_signals()
        try:
            if await self._start():
                await self._supervise()
            return 0
        except LaunchError as exc:
            log.error("%s", exc)
            return 1
        finally:
            await self._shutdown()
            lock.release()

    # ---- start -----------------------------------------------------------------------------
    async def _start(self) -> bool:
        """Everything up and registered (True), or a stop was asked for meanwhile (False)."""
        tokens_path = self.opts.state_dir / "tokens.json"
        self.tokens = ensure_tokens(tokens_path, self._previous_stack())
        ensure_service_token(tokens_path, self.opts.state_dir / SERVICE_TOKEN_FILE)
        if not self.opts.insecure:
            made = ensure_stack_tls(self.opts.state_dir, default_sans())
            self.tls = TlsPlan(roles=made.roles, public=made.api)
            self.etcd_server_tls = made.etcd
        remove_stack(self.path)
        taken = [port for port in api_ports(self.opts) if port and not port_is_free(port)]
        if taken:
            raise LaunchError(
                f"api port {', '.join(map(str, taken))} is in use (another stack?); use --api-port PORT, "
                "or 0 for free ones"
            )
        await self._start_etcd()
        if self.stop.is_set():
            return False
        self.services = plan_services(self.opts, self.etcd_urls, self.tls)
        for service in self.services:
            service.start()
        log.info("started %s; waiting for them to register", ", ".join(s.name for s in self.services))
        try:
            self.store = Store(list(self.etcd_urls), self.opts.prefix, self._etcd_tls())
            await self.store.connect()
        except (ConnectionError, ValueError) as exc:
            raise LaunchError(str(exc)) from exc
        if not await self._wait_ready():
            return False
        self._write_stack()
        print_summary(self._info(), self.opts.logs_dir, self.etcd is not None)
        return True

    def _previous_stack(self) -> StackInfo | None:
        try:
            return read_stack(self.path)
        except BadStackFile as exc:
            log.warning("ignoring %s", exc)
            return None

    async def _start_etcd(self) -> None:
        if self.opts.etcd:
            urls = [u for u in self.opts.etcd if u.startswith("http://")]
            if urls and not any(etcd_proc.is_healthy(u) for u in urls):
                raise LaunchError(f"etcd at {', '.join(self.opts.etcd)} is not healthy (GET /health)")
            return
        data_dir = etcd_proc.prepare_data_dir(self.opts.state_dir)
        ports = etcd_proc.choose_ports(data_dir, secure=self.etcd_server_tls is not None)
        self.etcd = plan_etcd(self.opts, etcd_proc.etcd_binary(), data_dir, ports, self.etcd_server_tls)
        self.etcd.start()
        self.etcd_urls = (ports.client_url,)
        identity = self.tls.roles["launcher"] if self.tls else None
        await etcd_proc.wait_healthy(ports.client_url, self.etcd.proc, self.etcd.log_path, identity)
        log.info("etcd is up at %s (pid %d)", ports.client_url, self.etcd.pid)

    async def _wait_ready(self) -> bool:
        assert self.store is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.stop.is_set():
            self._fail_on_exit()
            try:
                take_registrations(await read_services(self.store, self.services), self.services)
            except ETCD_DOWN as exc:
                log.debug("reading registrations: %s", exc)
            waiting = not_serving(self.services)
            if not waiting:
                return True
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                raise LaunchError(
                    f"start-up timed out after {STARTUP_TIMEOUT_S:g}s: {names} never registered in etcd; "
                    f"see their logs in {self.opts.logs_dir}"
                )
            await pause(self.stop, 0.2)
        return False

    def _fail_on_exit(self) -> None:
        for proc in [*([self.etcd] if self.etcd else []), *self.services]:
            code = proc.exit_code()
            if code is not None:
                raise LaunchError(
                    f"{proc.name} exited with code {code} during start-up; the end of {proc.log_path}:\n"
                    f"{log_tail(proc.log_path)}"
                )

    # ---- run -------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        store = self.store
        assert store is not None
        everything = [*([self.etcd] if self.etcd else []), *self.services]

        async def registrations() -> None:
            await follow_registrations(store, self.services, self._write_stack, self.stop)

        # Each loop ends with the stack (its `stop`); one that fails before is logged and run again.
        release = partial(release_dead, store)  # a dead child's lease: its restart need not wait it out

        async def keep() -> None:
            await keep_running(everything, self.stop, release)

        tasks = [
            spawn_supervised("keep-running", keep, until=self.stop.is_set),
            spawn_supervised("registrations", registrations, until=self.stop.is_set),
        ]
        if self.etcd is not None:  # the etcd the launcher started is the launcher's to look after
            upkeep = local_etcd_upkeep(store, self.opts, self._etcd_tls())
            tasks.append(spawn_supervised("etcd-upkeep", lambda: upkeep.run(self.stop), until=self.stop.is_set))
        waiter = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        self.stop.set()
        for task in (waiter, *tasks):
            task.cancel()
        await asyncio.gather(waiter, *tasks, return_exceptions=True)
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"the launcher's {task.get_name()} loop failed") from task.exception()

    def _etcd_tls(self) -> EtcdTls | None:
        """The launcher's way to etcd (and an operator's, through stack.json)."""
        return etcd_tls_of("launcher", self.opts, self.tls)

    def _info(self) -> StackInfo:
        apis = [s.endpoint for s in self.services if s.binary == "api"]
        return StackInfo(
            api=apis[0],
            apis=apis,
            etcd=list(self.etcd_urls),
            token=self.tokens[0],
            demo_token=self.tokens[1],
            state_dir=str(self.opts.state_dir),
            services=[s.entry() for s in self.services],
            ca_cert=str(self.tls.public.ca) if self.tls else "",
            etcd_tls=etcd_tls_files(self._etcd_tls()),
        )

    def _write_stack(self) -> None:
        write_stack(self.path, self._info())

    # ---- stop ------------------------------------------------------------------------------
    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop.is_set():
            log.warning("%s again: killing what is left", sig.name)
            self.hurry.set()
            return
        log.info("%s: stopping the stack", sig.name)
        self.stop.set()

    async def _shutdown(self) -> None:
        self.stop.set()
        remove_stack(self.path)
        if self.store is not None:
            await self.store.close()
        everything = [*self.services, *([self.etcd] if self.etcd else [])]
        if not any(p.running() for p in everything):
            return
        for binary in STOP_ORDER:
            group = [p for p in everything if p.binary == binary and p.running() and p.proc]
            if group:
                log.info("stopping %s", ", ".join(p.name for p in group))
                await stop_all([p.proc for p in group if p.proc], STOP_GRACE_S, self.hurry)
        log.info("stopped")
