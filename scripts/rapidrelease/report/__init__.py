"""What people read: the lot report, the lots index with its trends, and the MultiQC files."""
