"""The synthetic scheduler workload of issue 3, shared by Stratus's benchmark and the Nova baseline.

Pure Python with no Stratus (or Nova) imports, so both virtualenvs can import it and get identical
hosts for the same ``n`` and ``seed``.

Draw order (one ``random.Random(seed)``, never reseeded):

1. for each host i in 0..n-1, in order: ``choice(VCPUS)``, ``choice(RAM_MB)``, ``choice(DISK_GB)``,
   then the used fractions ``uniform(0, 0.6)`` for vCPUs, RAM and disk (three independent draws);
   the used amount is ``int(total * fraction)`` (rounded down);
2. then ``sample(range(n), n // 10)`` picks the hosts in availability zone ``az2`` (exactly 10 %,
   rounded down); every other host is in ``az1``.
"""

from __future__ import annotations

import hashlib
import random
from typing import TypedDict

VCPUS = (16, 32, 64, 128)
RAM_MB = (65536, 131072, 262144, 524288)
DISK_GB = (1000, 2000, 4000)
MAX_USED_FRACTION = 0.6
AZ2_SHARE = 10  # one host in AZ2_SHARE is in az2

# Every request of the benchmark: no image properties, no server group, no availability zone.
REQUEST = dict(vcpus=2, ram_mb=4096, disk_gb=20)


class Host(TypedDict):
    host: str
    vcpus: int
    vcpus_used: int
    ram_mb: int
    ram_mb_used: int
    disk_gb: int
    disk_gb_used: int
    availability_zone: str


def make_hosts(n: int, seed: int = 42) -> list[Host]:
    """``n`` hosts, identical for a given ``(n, seed)`` in any process (see the module doc)."""
    rng = random.Random(seed)
    hosts: list[Host] = []
    for i in range(n):
        vcpus, ram_mb, disk_gb = rng.choice(VCPUS), rng.choice(RAM_MB), rng.choice(DISK_GB)
        cpu_f, ram_f, disk_f = (rng.uniform(0.0, MAX_USED_FRACTION) for _ in range(3))
        hosts.append(
            Host(
                host=f"host-{i:05d}",
                vcpus=vcpus,
                vcpus_used=int(vcpus * cpu_f),
                ram_mb=ram_mb,
                ram_mb_used=int(ram_mb * ram_f),
                disk_gb=disk_gb,
                disk_gb_used=int(disk_gb * disk_f),
                availability_zone="az1",
            )
        )
    for i in rng.sample(range(n), n // AZ2_SHARE):
        hosts[i]["availability_zone"] = "az2"
    return hosts


def choices_digest(choices: list[str]) -> str:
    """A short digest of the hosts chosen, in order: two runs of the same length that print the
    same digest chose the same host at every decision."""
    return hashlib.sha256("\n".join(choices).encode()).hexdigest()[:16]
