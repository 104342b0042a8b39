"""Readers, writers and transports at the edges of the pipeline."""
