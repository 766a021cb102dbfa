"""Settings modules: base, local, production and test."""
