"""The monitoring a platform engineer installs next to the operator, generated from one table each so the
dashboard, the alert rules and docs/monitoring.md name the same metrics: `python -m slipway.monitoring
manifests/monitoring` writes them (a test fails when the checked-in files differ)."""
