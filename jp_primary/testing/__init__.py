"""Test support shipped with the package, for jp_primary's own tests and for third parties."""
