"""Trust at the edge: sensor keys and signed report batches, replay windows, and the hostile-input harness."""
