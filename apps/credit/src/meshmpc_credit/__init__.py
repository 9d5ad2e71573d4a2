"""meshmpc-credit: the SME credit applications built on meshmpc's public API."""

__version__ = "0.1.0"
