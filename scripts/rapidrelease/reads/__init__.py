"""Sequencing reads: input, k-mer index, classification."""
