"""``jp-primary import``: the maildir importer of L&B registrations and dumps and WMS sandboxes.

A client of the REST API like any other (``jp_primary.client``); see docs/importer.md.
"""
