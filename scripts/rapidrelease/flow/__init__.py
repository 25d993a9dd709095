"""Flow-cytometry assays: from gated populations to the metrics a specification names."""
