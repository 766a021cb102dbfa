"""Documents, chunks, retrieval, answering and prompt screening."""
