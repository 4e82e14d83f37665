"""File-type plugins: turn committed files into attribute values."""
