"""Helpers the test modules share, importable as ``support.<module>`` (pytest puts tests/ on sys.path)."""
