"""The order in which a record's derived fields (computed and looked up) are filled: each
after the fields it reads. The checker uses the reads to refuse cycles; the record service
fills fields in this order."""

from __future__ import annotations

from engine.registry.model import Entity, Field


def field_reads(fld: Field) -> set[str]:
    """The fields of its own record that a computed or looked-up field reads."""
    if fld.lookup is not None:
        return set(fld.lookup.inputs)
    return set(fld.compute.names) if fld.compute is not None else set()


def derivation_order(entity: Entity) -> tuple[str, ...]:
    """The computed and looked-up fields of `entity` in the order they are filled: each after
    the ones it reads, else in declaration order."""
    pending = [n for n, f in entity.fields.items() if f.compute is not None or f.lookup]
    reads = {n: field_reads(entity.fields[n]) & set(pending) for n in pending}
    done: list[str] = []
    while pending:
        finished = set(done)
        ready = next((n for n in pending if reads[n] - {n} <= finished), pending[0])
        done.append(ready)
        pending.remove(ready)
    return tuple(done)
