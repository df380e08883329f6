"""Prediction ids are random version-4 UUIDs, never repeated."""

import uuid

from foretell.service.ids import POOL_IDS, new_id


def test_ids_are_version_4_uuids_in_canonical_form_and_distinct() -> None:
    ids = [new_id() for _ in range(3 * POOL_IDS + 7)]  # across refills of the pool
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
