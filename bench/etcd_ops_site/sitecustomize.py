"""Bench-only: counts every etcd call of a Stratus process (bench/etcd_ops.py puts this directory
on PYTHONPATH, so each process of the stack imports it at start-up). Nothing here is production
code; without ``STRATUS_ETCD_OPS_DIR`` it does nothing.

Each unary etcd call (Range, Put, DeleteRange, Txn, LeaseGrant, LeaseRevoke, Compact) appends one
JSON line to ``$STRATUS_ETCD_OPS_DIR/<pid>.jsonl``: start time, duration, the process, the kind,
the first key, the calling Stratus functions (innermost first) and, for a transaction, its
compares and ops. Each finished OpenTelemetry span is written the same way (kind ``span``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import FrameType

_DIR = os.environ.get("STRATUS_ETCD_OPS_DIR")


def _install() -> None:  # noqa: PLR0915
    assert _DIR is not None
    out = open(os.path.join(_DIR, f"{os.getpid()}.jsonl"), "a", buffering=1)  # noqa: SIM115
    argv = sys.argv[1:]
    proc = "?"
    for i, arg in enumerate(argv):
        if arg == "--host" and i + 1 < len(argv):
            proc = argv[i + 1]
    if proc == "?" and len(argv) > 1:
        proc = " ".join(argv[:2])
    here = os.path.abspath(__file__)

    def callers() -> list[str]:
        chain: list[str] = []
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and len(chain) < 6:
            path = frame.f_code.co_filename
            if "/services/" in path and not path.endswith("services/core/etcd.py") and path != here:
                mod = path.split("/services/", 1)[1].removesuffix(".py").replace("/", ".")
                chain.append(f"{mod}.{frame.f_code.co_name}:{frame.f_lineno}")
            frame = frame.f_back
        return chain

    def rel(key: object) -> str:
        if isinstance(key, bytes):
            return key.decode(errors="replace").removeprefix("/stratus/")
        return str(key)

    def write(rec: dict[str, object]) -> None:
        rec["proc"] = proc
        out.write(json.dumps(rec) + "\n")

    def wrap(cls: type, name: str, kind: str, describe) -> None:  # type: ignore[no-untyped-def]
        original = getattr(cls, name)

        async def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            chain = callers()
            t0 = time.time()
            ok = None
            try:
                resp = await original(self, *args, **kwargs)
                ok = getattr(resp, "succeeded", None)
                return resp
            finally:
                rec = {"t": t0, "dt": time.time() - t0, "kind": kind, "callers": chain}
                rec.update(describe(args, kwargs))
                if ok is not None:
                    rec["ok"] = bool(ok)
                write(rec)

        setattr(cls, name, counted)

    def first_key(args, kwargs):  # type: ignore[no-untyped-def]
        key = args[0] if args else kwargs.get("key")
        d: dict[str, object] = {"key": rel(key)}
        if kwargs.get("range_end") is not None:
            d["prefix"] = True
        return d

    def txn_desc(args, kwargs):  # type: ignore[no-untyped-def]
        compare = args[0] if args else kwargs.get("compare", [])
        success = args[1] if len(args) > 1 else kwargs.get("success", [])
        ops = []
        for op in success:
            which = op.WhichOneof("request")
            inner = getattr(op, which)
            ops.append(f"{which.removeprefix('request_')}:{rel(inner.key)}")
        return {"key": rel(compare[0].key) if compare else "", "cmp": [rel(c.key) for c in compare], "ops": ops}

    from etcd3aio import kv as kv_mod
    from etcd3aio import lease as lease_mod

    wrap(kv_mod.KVService, "get", "range", first_key)
    wrap(kv_mod.KVService, "put", "put", first_key)
    wrap(kv_mod.KVService, "delete", "delete", first_key)
    wrap(kv_mod.KVService, "txn", "txn", txn_desc)
    wrap(kv_mod.KVService, "compact", "compact", lambda a, k: {"key": ""})
    wrap(lease_mod.LeaseService, "grant", "lease_grant", lambda a, k: {"key": str(a[0] if a else k.get("ttl"))})
    wrap(lease_mod.LeaseService, "revoke", "lease_revoke", lambda a, k: {"key": ""})

    try:
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError:
        return

    class SpanLines(sdk_trace.SpanProcessor):
        def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
            attrs = dict(span.attributes or {})
            write({
                "t": span.start_time / 1e9, "dt": (span.end_time - span.start_time) / 1e9, "kind": "span",
                "key": span.name, "instance": str(attrs.get("stratus.instance_id", "")),
                "trace": f"{span.context.trace_id:032x}",
            })  # fmt: skip

    original_init = sdk_trace.TracerProvider.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self.add_span_processor(SpanLines())

    sdk_trace.TracerProvider.__init__ = init  # type: ignore[method-assign]


if _DIR:
    try:
        _install()
    except Exception as exc:  # never stop a process from starting
        print(f"etcd_ops sitecustomize: not counting ({exc!r})", file=sys.stderr)
