"""Feeds to index servers (issue 8; docs/feeds.md): subscriptions, history and continuous
selection by seq, pull tokens, the push dispatcher with database leases, tombstones."""
