"""Shared fixtures. Each concern keeps its fixtures in tests/fixtures/<concern>.py, registered here."""

pytest_plugins = [
    "fixtures.cluster",
    "fixtures.operator",
    "fixtures.tfserving",
    "fixtures.images",
    "fixtures.modelserver",
    "fixtures.captures",
    "fixtures.kfp_api",
    "fixtures.storage",
    "fixtures.prometheus",
]
