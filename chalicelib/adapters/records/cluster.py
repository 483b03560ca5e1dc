"""The replicas of ``bocage serve`` that share a store: their directory, the secret they sign
their internal calls with, and the leases that make a scheduled job run once among them.

Every record expires by itself: a replica's record a little after its last heartbeat, a lease
after its slot. A replica that dies without a word thus leaves the directory on its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


@dataclass(frozen=True)
class Replica:
    replica_id: str
    address: str  # the base URL of its internal endpoint, e.g. http://10.0.0.7:8081
    expires_at: int


class ClusterRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def announce(self, replica: Replica) -> None:
        """Join the directory, or stay in it (the heartbeat): the record lives until ``expires_at``."""
        fields = {"replica_id": replica.replica_id, "address": replica.address}
        self._store.put(
            keys.record(keys.replica(replica.replica_id), {**fields, "expires_at": replica.expires_at})
        )

    def leave(self, replica_id: str) -> None:
        self._store.delete(*keys.replica(replica_id))

    def replicas(self) -> list[Replica]:
        """The live replicas (expired records are never read)."""
        return [
            Replica(str(item["replica_id"]), str(item["address"]), int(item["expires_at"]))
            for item in query_all(self._store, keys.CLUSTER_PK, keys.REPLICA_PREFIX, page_size=100)
        ]

    def shared_secret(self, candidate: str) -> str:
        """The cluster's secret: ``candidate`` if this replica is the first to write one."""
        pk, sk = keys.cluster_secret()
        with contextlib.suppress(ConditionFailed):  # another replica wrote it first: theirs it is
            self._store.put({"pk": pk, "sk": sk, "secret": candidate}, if_absent=True)
        item = self._store.get(pk, sk)
        assert item is not None  # written just now, or before by another replica
        return str(item["secret"])

    def claim(self, job: str, slot: int, holder: str, expires_at: int) -> bool:
        """Take the lease on one run of a job; False when another replica has it."""
        fields = {"holder": holder, "expires_at": expires_at}
        try:
            self._store.put(keys.record(keys.job_lease(job, slot), fields), if_absent=True)
        except ConditionFailed:
            return False
        return True
