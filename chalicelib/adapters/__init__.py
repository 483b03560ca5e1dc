"""Adapters: the edge where ports meet boto3, sqlite3, smtplib and the clock."""
