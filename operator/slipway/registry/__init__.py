"""ModelVersion registry: validation gates, champion comparison, lineage."""
