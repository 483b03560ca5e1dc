"""The storage layout: one module per aggregate turns models into store items and back.

Services speak in domain models; only this package knows partition and sort keys, prefixes
and item attributes (see docs/architecture.md, "Store layout").
"""
