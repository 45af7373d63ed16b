# Slipway's OCI images (images/*/Dockerfile) built without Docker or a registry: podman + runc on a Debian
# bookworm base made from Debian's packages, each image smoke-tested and saved as an OCI archive under
# $(SLIPWAY_CACHE)/images (hack/images.sh prints `image archive` lines; unchanged inputs are not rebuilt).
IMAGES ?= operator pipelines model-server

.PHONY: images
images: ## Build, smoke-test and save the operator, pipelines and model-server images (podman; needs root)
	@bash hack/images.sh $(IMAGES)
TEST_PREREQS += images
