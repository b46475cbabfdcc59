"""qcn parsers package."""
