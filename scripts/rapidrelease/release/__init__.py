"""Configuration, sample sheets, specifications and the release decision."""
