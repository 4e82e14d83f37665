"""A job's provenance for people and tools: its status timeline, PROV and RO-Crate exports."""
