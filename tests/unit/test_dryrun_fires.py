"""A dry run's flag is part of the request an idempotency key identifies, without changing the hash
of fires recorded before dry runs existed."""

from __future__ import annotations

import hashlib
import json

from seedbed.coordinator.store.fires import request_hash


def test_the_hash_of_a_real_run_is_unchanged_and_a_dry_run_differs() -> None:
    params = {"customers": "10"}
    before = hashlib.sha256(
        json.dumps({"scenario_id": "shop", "params": params}, sort_keys=True).encode()
    ).hexdigest()
    assert request_hash("shop", params) == before
    assert request_hash("shop", params, dry_run=False) == before
    assert request_hash("shop", params, dry_run=True) != before
    assert request_hash("shop", params, dry_run=True) == request_hash("shop", dict(params), dry_run=True)
