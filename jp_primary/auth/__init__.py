"""Identities (tokens, X.509 and proxies, trusted front ends, external issuers), roles."""
