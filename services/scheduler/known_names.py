"""The one refusal of a filter or weigher name the scheduler does not have, naming the known ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def check_known(kind: str, names: Iterable[str], known: Mapping[str, object]) -> None:
    """ValueError ``unknown scheduler <kind>(s) 'X'; known: ...`` when any of ``names`` (in their
    order, as given) is not in ``known``."""
    unknown = [name for name in names if name not in known]
    if unknown:
        listed, offered = ", ".join(map(repr, unknown)), ", ".join(sorted(known))
        raise ValueError(f"unknown scheduler {kind}(s) {listed}; known: {offered}")
