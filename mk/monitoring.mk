# Monitoring (operator/slipway/monitoring): the dashboard and alert rules in manifests/monitoring are generated;
# Prometheus and promtool (Debian's package, unpacked without root) land in $(SLIPWAY_CACHE) for the tests.

.PHONY: prometheus
prometheus: ## Unpack Debian's Prometheus + promtool into ~/.cache/slipway (once per version)
	@bash hack/prometheus.sh >/dev/null

.PHONY: monitoring
monitoring: install ## Regenerate manifests/monitoring (Grafana dashboard, alert rules, PrometheusRule)
	$(PY) -m slipway.monitoring manifests/monitoring

.PHONY: monitoring-dashboard
monitoring-dashboard: install prometheus k8s-binaries ## Re-capture real metrics (tests/monitoring) and redraw docs/monitoring-dashboard.png
	SLIPWAY_UPDATE_CAPTURES=1 $(PY) -m pytest tests/monitoring -k prometheus_scrapes $(PYTEST_ARGS)
	$(PY) -m slipway.monitoring.render tests/data/monitoring/dashboard.json docs/monitoring-dashboard.png

TEST_PREREQS += prometheus
