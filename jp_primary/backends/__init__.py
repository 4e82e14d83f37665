"""Storage backends: where the bytes of job files live."""
