"""The FTP upload door: one-time FTP(S) credentials that let an uploader store one file straight
into the filesystem backend's staging area, bypassing the API.

``grants`` issues and checks the credentials (kept in the database through
``db.repositories.door_grants``, so the door may run in its own process), ``server`` is the FTP
server, ``command`` is ``jp-primary ftpd``. The door writes into the storage root itself, so it
works with the filesystem backend only (``require_filesystem``).
"""
