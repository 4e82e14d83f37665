"""jp_primary: the Job Provenance primary storage service."""

__version__ = "0.1.0"
