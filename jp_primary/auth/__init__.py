"""Identities (service tokens, X.509 and proxies, trusted front ends, external issuers) and roles."""
