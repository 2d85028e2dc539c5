"""Flavors: create/get/list/delete, names unique through a name index written in the same txn."""

from __future__ import annotations

from services.api import indexes, paging
from services.api.validation import ID_CHARS, Violations, page_size
from services.core import keys
from services.core.errors import AlreadyExists, InvalidArgument, NotFound
from services.core.etcd import Store
from services.core.ids import new_id
from services.core.message_limits import fill_page_async
from stratus.v1 import flavors_pb2

SEED_FLAVORS = (
    ("m1.tiny", 1, 128, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
)


def validate(flavor: flavors_pb2.Flavor, has_flavor: bool) -> None:
    v = Violations()
    if not has_flavor:
        v.add("flavor", "is required")
    v.name("flavor.name", flavor.name)
    v.pattern("flavor.id", flavor.id, ID_CHARS, "letters, digits, '.', '_' or '-' (at most 128)")
    v.int_range("flavor.vcpus", flavor.vcpus, 1, 1024)
    v.int_range("flavor.ram_mb", flavor.ram_mb, 1, 64 * 1024 * 1024)
    v.int_range("flavor.disk_gb", flavor.disk_gb, 0, 1024 * 1024)
    v.mapping("flavor.extra_specs", flavor.extra_specs)
    v.raise_if_any()


class FlavorsManager:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, flavor: flavors_pb2.Flavor, has_flavor: bool = True) -> flavors_pb2.Flavor:
        validate(flavor, has_flavor)
        new = flavors_pb2.Flavor()
        new.CopyFrom(flavor)
        new.id = flavor.id or new_id()
        ok, _ = await self._store.txn(
            [self._store.cmp_absent(keys.flavor(new.id)), self._store.cmp_absent(keys.flavor_name(new.name))],
            [
                self._store.op_put(keys.flavor(new.id), new.SerializeToString()),
                self._store.op_put(keys.flavor_name(new.name), new.id.encode()),
            ],
        )
        if not ok:
            raise AlreadyExists(f"a flavor with id {new.id!r} or name {new.name!r} already exists")
        return new

    async def get(self, id_or_name: str, field: str = "id") -> flavors_pb2.Flavor:
        if not id_or_name:
            raise InvalidArgument([(field, "is required")])
        kv = await self._store.get(keys.flavor(id_or_name))
        if kv is None:
            by_name = await self._store.get(keys.flavor_name(id_or_name))
            kv = await self._store.get(keys.flavor(by_name.value.decode())) if by_name else None
        if kv is None:
            raise NotFound("flavor", id_or_name, field=field)
        return flavors_pb2.Flavor.FromString(kv.value)

    async def list(self, size: int, token: str) -> flavors_pb2.ListFlavorsResponse:
        limit = page_size(size)
        after = paging.decode(token, keys.FLAVORS)
        found = indexes.decoded(self._store, keys.FLAVORS, after, flavors_pb2.Flavor.FromString)
        flavors, last = await fill_page_async(found, limit)
        return flavors_pb2.ListFlavorsResponse(flavors=flavors, next_page_token=paging.next_token(last))

    async def delete(self, id_or_name: str) -> None:
        flavor = await self.get(id_or_name)
        await self._store.txn(
            [],
            [self._store.op_delete(keys.flavor(flavor.id)), self._store.op_delete(keys.flavor_name(flavor.name))],
        )

    async def seed(self) -> None:
        """m1.tiny/small/medium, unless there is a flavor of that name. Safe with api replicas
        starting together: ``create`` puts the flavor only while its name is absent, in one
        transaction, so of two replicas seeding at once one writes it and the other is told it
        exists."""
        for name, vcpus, ram_mb, disk_gb in SEED_FLAVORS:
            if await self._store.get(keys.flavor_name(name)) is None:
                try:
                    await self.create(flavors_pb2.Flavor(name=name, vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb))
                except AlreadyExists:
                    continue  # another api seeded it first
