"""Prediction ids are random version-4 UUIDs, never repeated."""

import os
import uuid

from foretell.service.ids import POOL_IDS, new_id


def test_ids_are_version_4_uuids_in_canonical_form_and_distinct() -> None:
    ids = [new_id() for _ in range(3 * POOL_IDS + 7)]  # across refills of the pool
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


def test_a_forked_child_draws_ids_of_its_own() -> None:
    new_id()  # the pool holds ids the child would repeat, were it copied
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = pipe.read()
    assert theirs != new_id()
