"""qcn chain package."""
