"""ragsecure: a zero-trust security layer in front of a RAG API."""
