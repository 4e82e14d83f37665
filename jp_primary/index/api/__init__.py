"""The index server's web application (the only part of ``jp_primary.index`` that uses FastAPI)."""
