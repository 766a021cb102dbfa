"""Database backends of ragsecure's own."""
