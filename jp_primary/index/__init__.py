"""The reference index server: subscribes to primary storages' feeds, answers queries across them.

A client of the primaries (REST only, through ``primary.py``); its own database, its own Alembic
migrations (``index/migrations``) and its own listener (``jp-primary index-server``). It never
imports the primary's ``services`` or ``db`` (the import-linter ``clients`` contract).
"""
