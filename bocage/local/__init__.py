"""The one-machine runtime: the same Chalice handlers behind a real HTTP server."""
