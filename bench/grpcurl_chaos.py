"""A black-box chaos check of Stratus through grpcurl only.

Starts ``stratus up --driver fake`` (2 apis, 2 schedulers, 2 computes by default) in a fresh state
dir, plus one extra compute run alone with ``--fake-fail-spawn`` (``compute-flaky``: every spawn on
it fails, so builds scheduled there are retried on another host). Then, through ``grpcurl`` (one
process per call, the api's reflection, the tokens of ``stack.json``), it runs creates (each with
its own ``request_id``, sent again with it on UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED or a failed
connection, to the next api replica) and deletes of a third of them, from a few worker threads,
while it SIGKILLs api, scheduler, compute and servicegroup processes by pid (from ``stack.json``,
only children of its own launcher; the launcher restarts them; the script restarts
``compute-flaky`` itself) and freezes etcd (SIGSTOP, ~3 s, SIGCONT). Then, for at most
``--settle`` seconds, it checks through grpcurl:

- every accepted create is exactly one server, with the id its reply gave (``ListServers``,
  all projects, as admin; found by the request id the client put in the server's metadata); a
  deleted one is none; no request id has two servers;
- no server in BUILD or with a task (``task_state``); every ERROR has a fault;
- each host's claims (``Hosts/ListHosts``: ``running_servers``, ``vcpus_used``, ``ram_mb_used``,
  ``disk_gb_used``) equal the servers placed on it (their ``resources``);
- every service is UP again (``Services/ListServices``);
- ``ListServerActions``: every server has one ``create`` action, finished (SUCCESS for ACTIVE,
  ERROR for ERROR); a build that was retried shows each attempt; a deleted server's actions stay
  readable with a finished ``delete``;
- a create sent again with its request id answers the same server and makes none.

No ``services.*`` import: the API is reached only by ``grpcurl``. Prints a summary and one JSON
line; exit 1 if an invariant was violated.

    .venv/bin/python -m bench.grpcurl_chaos --servers 100 --kills 12 --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
         "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
         "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]  # fmt: skip
TRANSPORT = "TRANSPORT"  # grpcurl exit 1: no connection, or reflection failed before the call
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", TRANSPORT}
KINDS = ("api", "scheduler", "compute", "servicegroup")
RID_KEY = "chaos_rid"
FLAKY = "compute-flaky"
S = "SERVER_STATUS_"
SLOW_S = 10.0


def now() -> float:
    return time.monotonic()


# ---- grpcurl --------------------------------------------------------------------------------
@dataclass
class Reply:
    code: str
    body: dict[str, Any]
    message: str
    seconds: float
    endpoint: str


@dataclass
class Calls:
    """Every call's outcome, and what a client should never see."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: Counter[str] = field(default_factory=Counter)  # "Method CODE"
    surprises: list[str] = field(default_factory=list)  # INTERNAL, UNKNOWN, ... with the message
    slow: list[str] = field(default_factory=list)
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # first non-OK replies
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    t0: float = field(default_factory=now)

    def note(self, method: str, reply: Reply, expected: set[str]) -> None:
        short = method.rsplit("/", 1)[-1]
        with self.lock:
            self.codes[f"{short} {reply.code}"] += 1
            self.seconds[short].append(reply.seconds)
            at = f"t+{now() - self.t0:6.1f}s"
            if reply.code != "OK" and len(self.samples[f"{short} {reply.code}"]) < 2:
                self.samples[f"{short} {reply.code}"].append(f"{at} via {reply.endpoint}: {reply.message[:200]}")
            if reply.code != "OK" and reply.code not in expected:
                self.surprises.append(f"{at} {short} -> {reply.code} via {reply.endpoint}: {reply.message[:300]}")
            if reply.seconds > SLOW_S:
                self.slow.append(f"{at} {short} took {reply.seconds:.1f}s -> {reply.code} via {reply.endpoint}")


class Grpcurl:
    def __init__(self, state_dir: Path, calls: Calls, max_time: float) -> None:
        self.state_dir = state_dir
        self.calls = calls
        self.max_time = max_time
        info = json.loads((state_dir / "stack.json").read_text())
        self.tokens = {"admin": str(info["token"]), "demo": str(info["demo_token"])}
        self._apis: list[str] = list(info.get("apis") or [info["api"]])
        self._read_at = now()

    def apis(self) -> list[str]:
        if now() - self._read_at > 1.0:
            try:
                info = json.loads((self.state_dir / "stack.json").read_text())
                self._apis = list(info.get("apis") or [info["api"]])
            except (OSError, ValueError, KeyError):
                pass  # being rewritten: keep the last
            self._read_at = now()
        return self._apis

    def call(self, method: str, body: dict[str, Any], who: str = "demo", n: int = 0,
             expected: set[str] | None = None, max_time: float | None = None) -> Reply:  # fmt: skip
        apis = self.apis()
        endpoint = apis[n % len(apis)]
        argv = ["grpcurl", "-plaintext", "-format-error", "-connect-timeout", "3",
                "-max-time", str(max_time or self.max_time), "-H", f"authorization: Bearer {self.tokens[who]}",
                "-d", "@", endpoint, f"stratus.v1.{method}"]  # fmt: skip
        t = now()
        out = subprocess.run(argv, input=json.dumps(body), capture_output=True, text=True, check=False)
        reply = parse(out.returncode, out.stdout, out.stderr, now() - t, endpoint)
        self.calls.note(method, reply, (expected or set()) | RETRYABLE)
        return reply


def parse(rc: int, stdout: str, stderr: str, seconds: float, endpoint: str) -> Reply:
    if rc == 0:
        return Reply("OK", json.loads(stdout or "{}"), "", seconds, endpoint)
    if rc >= 64 and rc - 64 < len(CODES):
        text = (stderr + stdout).strip()
        message = text
        start = text.find("{")
        if start >= 0:
            try:
                err = json.loads(text[start:])
                message = str(err.get("message", "")) + " " + json.dumps(err.get("details", []))
            except ValueError:
                pass
        return Reply(CODES[rc - 64], {"_error": text}, message, seconds, endpoint)
    text = (stderr or stdout).strip()
    return Reply(TRANSPORT, {}, text.splitlines()[0] if text else f"rc={rc}", seconds, endpoint)


def retry_delay(reply: Reply, attempt: int, rng: random.Random) -> float:
    m = re.search(r'"retry_delay":\s*"([0-9.]+)s"', reply.body.get("_error", ""))
    if m:
        return float(m.group(1))
    return float(min(0.2 * 2**attempt, 2.0) * rng.uniform(0.5, 1.0))


# ---- the stack and its processes --------------------------------------------------------------
def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


class Stack:
    def __init__(self, args: argparse.Namespace, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.args = args
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT}/services/core/gen",
                    "STRATUS_FAKE_SPAWN_DELAY_S": str(args.spawn_delay)}  # fmt: skip
        if not args.memory_domains:  # domains outlive a killed compute, as a hypervisor's do
            self.env["STRATUS_FAKE_DOMAINS_DIR"] = str(state_dir / "fake-domains")
        self.launcher: subprocess.Popen[bytes] | None = None
        self.flaky: subprocess.Popen[bytes] | None = None
        self.flaky_starts = 0
        self.frozen = 0

    def start(self) -> None:
        a = self.args
        argv = [sys.executable, "-m", "services.cli.main", "up", "--state-dir", str(self.state_dir),
                "--driver", "fake", "--apis", str(a.apis), "--schedulers", str(a.schedulers),
                "--computes", str(a.computes), "--api-port", "0", "--fake-host", a.host_size,
                "--insecure"]  # fmt: skip  (grpcurl -plaintext: this bench is about the answers, not TLS)
        log = open(self.state_dir / "launcher.out", "wb")  # noqa: SIM115 - lives as long as the launcher
        self.launcher = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = now() + 120
        while not (self.state_dir / "stack.json").exists():
            if self.launcher.poll() is not None or now() > deadline:
                raise SystemExit(f"stratus up failed: {(self.state_dir / 'launcher.out').read_text()[-2000:]}")
            time.sleep(0.5)
        if not self.args.no_flaky:
            self.start_flaky()

    def info(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return dict(json.loads((self.state_dir / "stack.json").read_text()))
            except (OSError, ValueError):
                time.sleep(0.1)
        return {}

    def start_flaky(self) -> None:
        """One compute run alone (as `stratus compute` documents), every spawn failing."""
        info = self.info()
        argv = [sys.executable, "-m", "services.cli.main", "compute", "--host", FLAKY,
                "--state-dir", str(self.state_dir), "--etcd", ",".join(info["etcd"]), "--port", "0",
                "--driver", "fake", "--fake-host", self.args.host_size, "--fake-fail-spawn"]  # fmt: skip
        log = open(self.state_dir / "logs" / f"{FLAKY}.log", "ab")  # noqa: SIM115
        self.flaky = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.flaky_starts += 1

    def victims(self, kind: str) -> list[tuple[str, int]]:
        """(host, pid) of the live processes of ``kind``: the launcher's children stack.json lists."""
        assert self.launcher is not None
        out = []
        for entry in self.info().get("services", []):
            pid = int(entry.get("pid") or 0)
            if entry.get("binary") == kind and pid and parent_of(pid) == self.launcher.pid and not is_zombie(pid):
                out.append((str(entry["host"]), pid))
        if kind == "compute" and self.flaky is not None and self.flaky.poll() is None:
            out.append((FLAKY, self.flaky.pid))
        return out

    def kill(self, host: str, pid: int) -> bool:
        assert self.launcher is not None
        if host == FLAKY and self.flaky is not None and pid == self.flaky.pid:
            self.flaky.kill()
            self.flaky.wait()
            threading.Timer(1.0, self.start_flaky).start()  # what a supervisor would do
            return True
        if parent_of(pid) != self.launcher.pid:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def etcd_pid(self) -> int:
        assert self.launcher is not None
        data_dir = str(self.state_dir / "etcd")
        for pid in children_of(self.launcher.pid):
            argv = cmdline(pid)
            if "--data-dir" in argv and argv[argv.index("--data-dir") + 1 :][:1] == [data_dir]:
                return pid
        return 0

    def freeze(self, seconds: float) -> int:
        pid = self.etcd_pid()
        if not pid:
            return 0
        os.kill(pid, signal.SIGSTOP)
        self.frozen = pid
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
            self.frozen = 0
        return pid

    def stop(self) -> int | None:
        if self.frozen:
            os.kill(self.frozen, signal.SIGCONT)
        if self.flaky is not None and self.flaky.poll() is None:
            self.flaky.terminate()
            try:
                self.flaky.wait(20)
            except subprocess.TimeoutExpired:
                self.flaky.kill()
        if self.launcher is None or self.launcher.poll() is not None:
            return None if self.launcher is None else self.launcher.returncode
        self.launcher.send_signal(signal.SIGTERM)
        try:
            return self.launcher.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.launcher.pid, signal.SIGKILL)  # the launcher's own session only
            return self.launcher.wait()


# ---- the workload -----------------------------------------------------------------------------
@dataclass
class Seen:
    lock: threading.Lock = field(default_factory=threading.Lock)
    replied: dict[str, str] = field(default_factory=dict)  # rid -> id answered
    unanswered: dict[str, str] = field(default_factory=dict)  # rid -> why (refused, or given up)
    deleted: dict[str, str] = field(default_factory=dict)  # id -> rid, NOT_FOUND seen after the delete
    undeleted: dict[str, str] = field(default_factory=dict)  # id -> rid, delete not seen through
    retries: Counter[str] = field(default_factory=Counter)
    kill_log: list[str] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    killed_pids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def create(api: Grpcurl, seen: Seen, n: int, rid: str, args: argparse.Namespace, rng: random.Random) -> str:
    body = {"server": {"name": rid, "flavor_id": args.flavor, "image_id": "tiny", "metadata": {RID_KEY: rid}},
            "request_id": rid}  # fmt: skip
    deadline, attempt = now() + args.op_budget, 0
    while True:
        r = api.call("Servers/CreateServer", body, n=n + attempt)
        if r.code == "OK":
            with seen.lock:
                seen.replied[rid] = str(r.body["id"])
            return str(r.body["id"])
        if r.code not in RETRYABLE or now() > deadline:
            with seen.lock:
                seen.unanswered[rid] = f"{r.code}: {r.message[:200]}"
            return ""
        with seen.lock:
            seen.retries[f"create {r.code}"] += 1
        time.sleep(retry_delay(r, attempt, rng))
        attempt += 1


def delete(api: Grpcurl, seen: Seen, n: int, sid: str, rid: str, args: argparse.Namespace, rng: random.Random) -> None:
    deadline, attempt = now() + args.op_budget, 0
    while now() < deadline:
        r = api.call("Servers/DeleteServer", {"id": sid}, n=n + attempt, expected={"NOT_FOUND"})
        if r.code == "NOT_FOUND":
            break
        if r.code != "OK":
            with seen.lock:
                seen.retries[f"delete {r.code}"] += 1
            time.sleep(retry_delay(r, attempt, rng))
            attempt += 1
            continue
        if gone(api, sid, n, min(30.0, max(0.0, deadline - now()))):
            break
        attempt += 1
    else:
        with seen.lock:
            seen.undeleted[sid] = rid
        return
    with seen.lock:
        seen.deleted[sid] = rid


def gone(api: Grpcurl, sid: str, n: int, within: float) -> bool:
    deadline = now() + within
    while now() < deadline:
        r = api.call("Servers/GetServer", {"id": sid}, n=n, expected={"NOT_FOUND"})
        if r.code == "NOT_FOUND":
            return True
        if r.code != "OK":
            n += 1
        time.sleep(0.5)
    return False


def chaos_events(args: argparse.Namespace, rng: random.Random, creating: threading.Event) -> Iterator[str]:
    """The planned kills (every kind in turn) with the freezes among them; then, with
    ``--chaos-while-creating``, more of the same (a freeze after every three rounds) while creates
    are still being sent."""
    events: list[str] = []
    while len(events) < args.kills:
        events += rng.sample(KINDS, len(KINDS))
    events = events[: args.kills]
    for _ in range(args.freezes):
        events.insert(rng.randint(1, len(events)), "etcd-freeze")
    yield from events
    rounds = 0
    while args.chaos_while_creating and creating.is_set():
        for kind in rng.sample(KINDS, len(KINDS)):
            if not creating.is_set():
                return
            yield kind
        rounds += 1
        if rounds % 3 == 0 and args.freezes:
            yield "etcd-freeze"


def chaos(stack: Stack, seen: Seen, args: argparse.Namespace, rng: random.Random, t0: float,
          creating: threading.Event) -> None:  # fmt: skip
    for event in chaos_events(args, rng, creating):
        time.sleep(args.interval * rng.uniform(0.6, 1.4))
        at = f"t+{now() - t0:5.1f}s"
        if event == "etcd-freeze":
            seconds = rng.uniform(args.freeze_s - 0.5, args.freeze_s + 0.5)
            pid = stack.freeze(seconds)
            seen.kill_log.append(f"{at} SIGSTOP etcd (pid {pid}) for {seconds:.1f}s" if pid else f"{at} no etcd")
            seen.kills["etcd-freeze"] += 1 if pid else 0
            continue
        deadline = now() + 15
        while True:
            live = stack.victims(event)
            if live:
                host, pid = rng.choice(live)
                if stack.kill(host, pid):
                    seen.kills[event] += 1
                    seen.killed_pids[host].append(pid)
                    seen.kill_log.append(f"{at} SIGKILL {host} (pid {pid})")
                    break
            if now() > deadline:
                seen.kill_log.append(f"{at} no live {event} to kill (all restarting?)")
                break
            time.sleep(0.5)


def workload(api: Grpcurl, stack: Stack, seen: Seen, args: argparse.Namespace, rng: random.Random,
             run_id: str) -> float:  # fmt: skip
    to_delete = set(rng.sample(range(args.servers), min(args.deletes, args.servers)))
    spread = max(args.kills + args.freezes, 1) * args.interval
    t0 = now()
    delays = {n: rng.uniform(0.0, 2.0) for n in range(args.servers)}

    def one(n: int) -> None:
        time.sleep(max(0.0, t0 + spread * n / args.servers - now()))
        rid = f"gc-{run_id}-{n}"
        sid = create(api, seen, n, rid, args, random.Random(f"{run_id}{n}"))
        if sid and n in to_delete:
            time.sleep(delays[n])
            delete(api, seen, n, sid, rid, args, random.Random(f"{run_id}{n}d"))

    creating = threading.Event()
    creating.set()
    chaos_thread = threading.Thread(target=chaos, args=(stack, seen, args, rng, t0, creating), daemon=True)
    chaos_thread.start()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, range(args.servers)))
    creating.clear()
    chaos_thread.join()
    return now() - t0


# ---- the checks -------------------------------------------------------------------------------
def list_all(api: Grpcurl) -> list[dict[str, Any]] | None:
    out: list[dict[str, Any]] = []
    token, attempt = "", 0
    while attempt < 30:
        r = api.call("Servers/ListServers", {"page_size": 1000, "page_token": token, "all_projects": True},
                     who="admin", n=attempt, max_time=30)  # fmt: skip
        if r.code != "OK":
            attempt += 1
            time.sleep(1.0)
            continue
        out += r.body.get("servers", [])
        token = r.body.get("next_page_token", "")
        if not token:
            return out
    return None


def admin_list(api: Grpcurl, method: str, key: str, attempts: int = 30) -> list[dict[str, Any]] | None:
    """Every item of an admin list, page after page (None if a page keeps failing)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        for attempt in range(attempts):
            r = api.call(method, {"page_size": 1000, "page_token": token}, who="admin", n=attempt)
            if r.code == "OK":
                break
            time.sleep(1.0)
        else:
            return None
        items += r.body.get(key, [])
        token = r.body.get("next_page_token", "")
        if not token:
            return items


def describe(s: dict[str, Any]) -> str:
    fault = s.get("fault", {}).get("message", "")
    task = s.get("task_state", "").removeprefix("TASK_STATE_") or "-"
    st = s.get("status", "").removeprefix(S)
    return f"{s['id']} {st}/{task} host={s.get('host') or '-'}" + (f" fault={fault[:160]!r}" if fault else "")


Violations = list[tuple[str, str]]  # (kind, evidence)


def check(seen: Seen, servers: list[dict[str, Any]], hosts: list[dict[str, Any]]) -> Violations:
    return check_creates(seen, servers) + check_states(servers) + check_claims(servers, hosts)


def check_creates(seen: Seen, servers: list[dict[str, Any]]) -> Violations:
    v: Violations = []
    by_rid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in servers:
        by_rid[s.get("metadata", {}).get(RID_KEY, "")].append(s)
    for rid, found in by_rid.items():
        if rid and len(found) > 1:
            v.append(("doubled", f"{rid}: " + "; ".join(describe(s) for s in found)))
    deleted_rids = set(seen.deleted.values())
    undeleted_rids = set(seen.undeleted.values())
    for rid, sid in seen.replied.items():
        found = by_rid.get(rid, [])
        if rid in deleted_rids and found:
            v.append(("deleted_but_present", "; ".join(describe(s) for s in found)))
        elif rid in undeleted_rids and found:
            v.append(("delete_never_finished", "; ".join(describe(s) for s in found)))
        elif rid in deleted_rids or rid in undeleted_rids:
            continue
        elif not found:
            v.append(("lost", f"create {rid} answered {sid}; no server has that request id"))
        elif sid not in {s["id"] for s in found}:
            v.append(("other_id", f"{rid}: answered {sid}, found {[s['id'] for s in found]}"))
    return v


def check_states(servers: list[dict[str, Any]]) -> Violations:
    v: Violations = []
    for s in servers:
        if s.get("task_state") or s.get("status") == S + "BUILD":
            v.append(("transitional", describe(s)))
        if s.get("status") == S + "ERROR" and not s.get("fault", {}).get("message"):
            v.append(("error_without_fault", describe(s)))
    return v


def check_claims(servers: list[dict[str, Any]], hosts: list[dict[str, Any]]) -> Violations:
    """Each host's usage (what the scheduler claimed) equals the resources of the servers placed on it."""
    v: Violations = []
    placed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in servers:
        if s.get("host"):
            placed[s["host"]].append(s)
    for h in hosts:
        mine = placed.pop(h["host"], [])
        want = {"running_servers": len(mine),
                "vcpus_used": sum(int(s.get("resources", {}).get("vcpus", 0)) for s in mine),
                "ram_mb_used": sum(int(s.get("resources", {}).get("ram_mb", 0)) for s in mine),
                "disk_gb_used": sum(int(s.get("resources", {}).get("disk_gb", 0)) for s in mine)}  # fmt: skip
        got = {k: int(h.get(k, 0)) for k in want}
        if got != want:
            v.append(("claims_differ", f"{h['host']}: claimed {got}, placed servers {want}"))
    for host, mine in placed.items():
        v.append(("placed_on_unknown_host", f"{host}: {[describe(s) for s in mine]}"))
    return v


def check_actions(api: Grpcurl, seen: Seen, servers: list[dict[str, Any]], workers: int
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, list[dict[str, Any]]]], Counter[str]]:  # fmt: skip
    """Violations, the servers whose build was retried (with their actions), and a tally."""
    v: list[tuple[str, str]] = []
    retried: list[tuple[str, list[dict[str, Any]]]] = []
    tally: Counter[str] = Counter()

    def actions_of(sid: str) -> Reply:
        for attempt in range(10):
            r = api.call("Servers/ListServerActions", {"id": sid}, n=attempt)
            if r.code not in RETRYABLE:
                return r
            time.sleep(1.0)
        return r

    ours = [s for s in servers if s.get("metadata", {}).get(RID_KEY)]
    deleted = list(seen.deleted)[:20]
    with ThreadPoolExecutor(workers) as pool:
        live = list(pool.map(lambda s: (s, actions_of(s["id"])), ours))
        gone_ = list(pool.map(lambda sid: (sid, actions_of(sid)), deleted))
    for s, r in live:
        if r.code != "OK":
            v.append(("actions_unreadable", f"{s['id']}: {r.code} {r.message[:200]}"))
            continue
        acts = r.body.get("actions", [])
        creates = [a for a in acts if a.get("action") == "create"]
        if len(creates) != 1:
            v.append(("create_actions", f"{describe(s)}: {len(creates)} create actions"))
            continue
        a = creates[0]
        result = a.get("result", "").removeprefix("SERVER_ACTION_RESULT_")
        tally[f"create {result}"] += 1
        want = {S + "ACTIVE": "SUCCESS", S + "ERROR": "ERROR"}.get(s.get("status", ""))
        if want and result != want:
            v.append(("action_result", f"{describe(s)}: create action {result} ({a.get('message', '')[:200]})"))
        if a.get("request_id") != s["metadata"][RID_KEY]:
            v.append(("action_request_id", f"{s['id']}: {a.get('request_id')} != {s['metadata'][RID_KEY]}"))
        spawns = [e for e in a.get("events", []) if e.get("name") == "spawn"]
        tally[f"spawn attempts {len(spawns)}"] += 1
        if len(spawns) > 1:
            retried.append((s["id"], acts))
    for sid, r in gone_:
        if r.code != "OK":
            v.append(("deleted_actions_unreadable", f"{sid}: {r.code} {r.message[:200]}"))
            continue
        kinds = {a.get("action"): a.get("result", "").removeprefix("SERVER_ACTION_RESULT_")
                 for a in r.body.get("actions", [])}  # fmt: skip
        tally[f"deleted server: delete {kinds.get('delete')}"] += 1
        if kinds.get("delete") not in {"SUCCESS"} or "create" not in kinds:
            v.append(("deleted_actions", f"{sid}: {kinds}"))
    return v, retried, tally


def replay(api: Grpcurl, seen: Seen, args: argparse.Namespace, rng: random.Random) -> list[tuple[str, str]]:
    """Creates sent again with their request id answer the same server; another body is refused."""
    v: list[tuple[str, str]] = []
    gone_ = set(seen.deleted.values()) | set(seen.undeleted.values())
    rids = [rid for rid in seen.replied if rid not in gone_]
    for rid in rng.sample(rids, min(10, len(rids))):
        body = {"server": {"name": rid, "flavor_id": args.flavor, "image_id": "tiny", "metadata": {RID_KEY: rid}},
                "request_id": rid}  # fmt: skip
        r = api.call("Servers/CreateServer", body, n=rng.randrange(8))
        if r.code != "OK" or r.body.get("id") != seen.replied[rid]:
            v.append(("replay", f"{rid} first answered {seen.replied[rid]}, again: {r.code} {r.body.get('id')} "
                                f"{r.message[:200]}"))  # fmt: skip
    if rids:
        rid = rids[0]
        body = {"server": {"name": rid + "-other", "flavor_id": args.flavor, "image_id": "tiny"}, "request_id": rid}
        r = api.call("Servers/CreateServer", body, expected={"ALREADY_EXISTS"})
        if r.code != "ALREADY_EXISTS":
            v.append(("replay_other_body", f"{rid} with another body: {r.code} {r.body.get('id')} {r.message[:200]}"))
    return v


def force_retry(api: Grpcurl, seen: Seen, args: argparse.Namespace, run_id: str) -> list[tuple[str, Any]]:
    """Creates (outside the chaos) until one build is retried; returns [(id, actions)] of it."""
    for k in range(args.probes):
        rid = f"gc-{run_id}-probe-{k}"
        sid = create(api, seen, k, rid, args, random.Random(k))
        seen.replied.pop(rid, None)
        if not sid:
            continue
        for _ in range(60):
            r = api.call("Servers/GetServer", {"id": sid})
            if r.code == "OK" and r.body.get("status") != S + "BUILD" and not r.body.get("task_state"):
                break
            time.sleep(0.5)
        r = api.call("Servers/ListServerActions", {"id": sid})
        acts = r.body.get("actions", []) if r.code == "OK" else []
        spawns = [e for a in acts for e in a.get("events", []) if e.get("name") == "spawn"]
        if len(spawns) > 1:
            return [(sid, acts)]
    return []


def show_actions(sid: str, acts: list[dict[str, Any]]) -> str:
    lines = [f"  ListServerActions {sid}:"]
    for a in acts:
        res = a.get("result", "").removeprefix("SERVER_ACTION_RESULT_")
        lines.append(f"    {a.get('action')} {a.get('request_id')} {res} {a.get('message', '')[:120]}")
        for e in a.get("events", []):
            res = e.get("result", "").removeprefix("SERVER_ACTION_RESULT_")
            lines.append(f"      {e.get('name'):<10} {e.get('host', '-'):<14} {res:<8} {e.get('message', '')[:140]}")
    return "\n".join(lines)


def scan_logs(logs: Path) -> dict[str, int]:
    out: Counter[str] = Counter()
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or line.startswith("Traceback"):
                out[path.stem] += 1
    return dict(out)


# ---- main -------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=100, help="creates, each its own request_id")
    p.add_argument("--deletes", type=int, default=None, help="of those, deleted again (default: a third)")
    p.add_argument("--kills", type=int, default=12, help="SIGKILLs, over every kind in turn")
    p.add_argument("--freezes", type=int, default=2, help="etcd freezes (SIGSTOP ... SIGCONT)")
    p.add_argument("--freeze-s", type=float, default=3.0, help="each freeze, +-0.5 s")
    p.add_argument("--interval", type=float, default=3.0, help="seconds between chaos events (jittered)")
    p.add_argument("--no-chaos-while-creating", dest="chaos_while_creating", action="store_false",
                   help="stop after the planned kills even if creates are still being sent")  # fmt: skip
    p.add_argument("--workers", type=int, default=8, help="client threads (each call is a grpcurl process)")
    p.add_argument("--apis", type=int, default=2)
    p.add_argument("--schedulers", type=int, default=2)
    p.add_argument("--computes", type=int, default=2)
    p.add_argument("--no-flaky", action="store_true", help=f"no {FLAKY} (a compute whose spawns all fail)")
    p.add_argument("--memory-domains", action="store_true", help="fake domains in memory (lost with their compute)")
    p.add_argument("--spawn-delay", type=float, default=0.3, help="seconds a fake spawn takes")
    p.add_argument("--host-size", default="vcpus=1024,ram_mb=1048576,disk_gb=100000")
    p.add_argument("--flavor", default="m1.tiny")
    p.add_argument("--settle", type=float, default=120.0, help="seconds allowed to settle after the chaos")
    p.add_argument("--op-budget", type=float, default=120.0, help="seconds a create or delete is retried")
    p.add_argument("--max-time", type=float, default=30.0, help="grpcurl -max-time of each call")
    p.add_argument("--probes", type=int, default=15, help="extra creates to find a retried build, if none was seen")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the state dir (logs, etcd) and print its path")
    args = p.parse_args()
    if args.deletes is None:
        args.deletes = args.servers // 3
    if shutil.which("grpcurl") is None:
        p.error("grpcurl is not on PATH (it is in .venv/bin)")
    return args


@dataclass
class Outcome:
    workload_s: float = 0.0
    settle_s: float | None = None
    first: Violations = field(default_factory=list)
    violations: Violations = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    retried: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    forced: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    restarts: list[str] = field(default_factory=list)


def settle(api: Grpcurl, seen: Seen, args: argparse.Namespace, out: Outcome) -> None:
    """Checks until the invariants hold or ``args.settle`` passes."""
    t0 = now()
    first = True
    while True:
        out.servers = list_all(api) or []
        hosts = admin_list(api, "Hosts/ListHosts", "hosts", attempts=5)
        out.hosts = hosts or []
        out.violations = check(seen, out.servers, out.hosts)
        if hosts is None:  # e.g. the servicegroup is restarting: ListHosts is UNAVAILABLE meanwhile
            out.violations = [v for v in out.violations if v[0] not in {"claims_differ", "placed_on_unknown_host"}]
            out.violations.append(("hosts_unreadable", "Hosts/ListHosts answered no hosts (see its codes)"))
        if first:
            out.first, first = list(out.violations), False
        if not out.violations:
            out.settle_s = now() - t0
            return
        if now() - t0 > args.settle:
            return
        time.sleep(3.0)


def check_services(api: Grpcurl, stack: Stack, seen: Seen, out: Outcome, within: float = 90.0) -> None:
    """Every killed process running again under a new pid, and every service UP (waits ``within`` s:
    the launcher's restart backoff grows with repeated kills, and a restarted process waits out its
    predecessor's lease before it registers)."""
    deadline = now() + within
    while True:
        problems: Violations = []
        restarts: list[str] = []
        pids = {str(e["host"]): int(e.get("pid") or 0) for e in stack.info().get("services", [])}
        if stack.flaky is not None:
            pids[FLAKY] = stack.flaky.pid if stack.flaky.poll() is None else 0
        for host, killed in seen.killed_pids.items():
            pid = pids.get(host, 0)
            alive = bool(pid) and not is_zombie(pid) and pid not in killed
            restarts.append(f"{host}: killed {killed}, now pid {pid}{'' if alive else ' (not restarted)'}")
            if not alive:
                problems.append(("not_restarted", restarts[-1]))
        services = admin_list(api, "Services/ListServices", "services") or []
        for s in services:
            if s.get("state") != "SERVICE_STATE_UP":
                problems.append(("service_down", f"{s.get('binary')} {s.get('host')} {s.get('state')}"))
        if not problems or now() > deadline:
            out.restarts = restarts
            out.violations += problems
            return
        time.sleep(2.0)


def final_checks(api: Grpcurl, stack: Stack, seen: Seen, args: argparse.Namespace, rng: random.Random,
                 run_id: str, out: Outcome) -> None:  # fmt: skip
    check_services(api, stack, seen, out)
    act_v, out.retried, out.tally = check_actions(api, seen, out.servers, 4)
    out.violations += act_v
    if not out.retried and not args.no_flaky:
        out.forced = force_retry(api, seen, args, run_id)
        if not out.forced:
            out.violations.append(("no_retried_build", f"none of {args.probes} probe creates was retried"))
    out.violations += replay(api, seen, args, rng)
    after = list_all(api) or []
    hosts = admin_list(api, "Hosts/ListHosts", "hosts") or []
    out.violations += [("after_replay_" + k, ev) for k, ev in check(seen, after, hosts) if k == "doubled"]


def latency(values: list[float]) -> str:
    v = sorted(values)
    return f"n={len(v)} p50={v[len(v) // 2]:.2f}s p99={v[min(len(v) - 1, int(len(v) * 0.99))]:.2f}s max={v[-1]:.2f}s"


def report(args: argparse.Namespace, stack: Stack, calls: Calls, seen: Seen, out: Outcome, code: int | None) -> None:
    print("\n==== summary ====")
    print(f"creates answered {len(seen.replied)}, not answered {len(seen.unanswered)}, deletes seen through "
          f"{len(seen.deleted)}, deletes unfinished {len(seen.undeleted)}; workload {out.workload_s:.1f}s")  # fmt: skip
    for rid, why in list(seen.unanswered.items())[:10]:
        print(f"  unanswered {rid}: {why}")
    print(f"kills {dict(seen.kills)}; {FLAKY} started {stack.flaky_starts} times; launcher exit {code}")
    for line in seen.kill_log:
        print(f"  {line}")
    print("restarts:")
    for line in out.restarts:
        print(f"  {line}")
    print(f"client retries {dict(seen.retries)}")
    print(f"calls by method and code {dict(sorted(calls.codes.items()))}")
    for key, lines in sorted(calls.samples.items()):
        for line in lines:
            print(f"  e.g. {key}: {line}")
    for method, values in sorted(calls.seconds.items()):
        print(f"  latency {method}: {latency(values)}")
    states = Counter(s.get("status", "").removeprefix(S) for s in out.servers)
    print(f"servers at the end {dict(states)}; hosts {[(h['host'], h.get('running_servers', 0)) for h in out.hosts]}")
    faults = Counter(re.sub(r"[0-9a-f-]{36}|127\.0\.0\.1:\d+", "<x>", s.get("fault", {}).get("message", ""))[:220]
                     for s in out.servers if s.get("status") == S + "ERROR")  # fmt: skip
    for message, count in faults.most_common(8):
        print(f"  ERROR x{count}: {message}")
    settled = "NEVER" if out.settle_s is None else f"in {out.settle_s:.1f}s"
    print(f"settled {settled}; at the first look: {dict(Counter(k for k, _ in out.first))}")
    print(f"ListServerActions tally {dict(out.tally)}; retried builds seen in the chaos: {len(out.retried)}"
          f"{'; forced one after it' if out.forced else ''}")  # fmt: skip
    for sid, acts in (out.retried or out.forced)[:1]:
        print(show_actions(sid, acts))
    print(f"surprising replies ({len(calls.surprises)}):")
    for line in calls.surprises[:40]:
        print(f"  {line}")
    print(f"calls slower than {SLOW_S:g}s ({len(calls.slow)}):")
    for line in calls.slow[:20]:
        print(f"  {line}")
    print(f"ERROR lines in the logs: {scan_logs(stack.state_dir / 'logs')}")
    by_kind = Counter(k for k, _ in out.violations)
    print(f"VIOLATIONS: {dict(by_kind) or 'none'}")
    for kind, ev in out.violations[:60]:
        print(f"  {kind}: {ev}")


def main() -> int:
    args = parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    run_id = f"{rng.randrange(16**6):06x}"
    state_dir = Path(tempfile.mkdtemp(prefix="stratus-grpcurl-chaos-"))
    stack, calls, seen, out = Stack(args, state_dir), Calls(), Seen(), Outcome()
    try:
        stack.start()
        api = Grpcurl(state_dir, calls, args.max_time)
        quota = {"instances": -1, "cores": -1, "ram_mb": -1}
        r = api.call("Quotas/UpdateQuotaSet", {"project_id": "demo", "quota_set": quota}, who="admin")
        if r.code != "OK":
            raise SystemExit(f"UpdateQuotaSet: {r.code} {r.message}")
        time.sleep(0.0 if args.no_flaky else 3.0)  # compute-flaky registers
        print(f"grpcurl chaos {run_id} (seed {seed}): {args.servers} creates, {args.deletes} deletes, "
              f"{args.kills} kills, {args.freezes} etcd freezes; state dir {state_dir}", flush=True)  # fmt: skip
        calls.t0 = now()
        out.workload_s = workload(api, stack, seen, args, rng, run_id)
        print(f"workload done in {out.workload_s:.1f}s; settling (at most {args.settle:g}s)", flush=True)
        settle(api, seen, args, out)
        final_checks(api, stack, seen, args, rng, run_id, out)
    finally:
        code = stack.stop()
    report(args, stack, calls, seen, out, code)
    print(json.dumps({"bench": "grpcurl_chaos", "seed": seed, "run": run_id, "servers": args.servers,
                      "answered": len(seen.replied), "unanswered": len(seen.unanswered), "deleted": len(seen.deleted),
                      "kills": dict(seen.kills), "retries": dict(seen.retries), "surprises": len(calls.surprises),
                      "slow_calls": len(calls.slow), "workload_s": round(out.workload_s, 1),
                      "settle_s": None if out.settle_s is None else round(out.settle_s, 1),
                      "violations": dict(Counter(k for k, _ in out.violations)),
                      "retried_builds": len(out.retried)}))  # fmt: skip
    if args.keep:
        print(f"state dir kept: {state_dir}")
    else:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 1 if out.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
