"""Bocage server: everything the Lambda needs, bundled by Chalice."""
