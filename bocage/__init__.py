"""Bocage user-side tools: the client SDK, the CLI and the one-machine runtime.

Never bundled into the Lambda.
"""
