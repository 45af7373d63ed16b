"""Shared fixtures. Each concern keeps its fixtures in tests/fixtures/<concern>.py, registered here."""

pytest_plugins = [
    "fixtures.cluster",
    "fixtures.operator",
    "fixtures.tfserving",
    "fixtures.captures",
    "fixtures.storage",
    "fixtures.kfp_backend",
    "fixtures.prometheus",
]
