"""meshmpc.pir: keyword symmetric PIR ("anonymous query").

The bank asks a partner about applicants; the partner learns neither which
keys were asked nor whether they were found, the bank learns the records of
the keys it asked about and nothing else. Built from a Curve25519 OPRF
(:mod:`~meshmpc.pir.oprf25519`: X25519 ladder for the server's records,
edwards25519 blinding for queries), AES-sealed records in a bucketed cuckoo table
(:mod:`~meshmpc.pir.table`) and SimplePIR over LWE (:mod:`~meshmpc.pir.lwe`).

* :func:`~meshmpc.pir.table.build_database` - server offline phase;
* :class:`~meshmpc.pir.server.PirServer` - serves hint/OPRF/query requests,
  hot-swaps rebuilt versions;
* :class:`~meshmpc.pir.client.PirClient` - holds the hint, runs batches;
* :func:`~meshmpc.pir.api.query_table` / :func:`~meshmpc.pir.api.load_database`
  - table-level API (pyarrow in, pyarrow out).

Protocol, security model and costs: protocols/pir.md.
"""

from meshmpc.pir.client import Hit, PirClient
from meshmpc.pir.errors import PirError, PirInputError, PirProtocolError, StaleHintError
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import PirDatabase, PirParams, build_database

__all__ = [
    "Hit",
    "PirClient",
    "PirDatabase",
    "PirError",
    "PirInputError",
    "PirParams",
    "PirProtocolError",
    "PirServer",
    "StaleHintError",
    "build_database",
]
