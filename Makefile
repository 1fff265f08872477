# The README's two commands: `make dev` (a local control plane with
# roost-keeper serving, ready for kubectl apply) and `make test` (everything
# CI checks; .ci/run calls it).

CARGO ?= cargo

.PHONY: dev test cluster fmt-check clippy unit validate crd webhook-config bench

dev: cluster
	$(CARGO) build --release --locked -p roost-keeper --bin roost-keeper
	$(CARGO) run --release --locked --quiet -p roost-testcluster --bin roost-dev

test: cluster fmt-check clippy unit

# Builds kube-apiserver, etcd and kubectl from source when missing (cached under .cache/).
cluster:
	tests/cluster/build.sh >/dev/null

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Unit, HTTPS and end-to-end tests (benches are built by clippy, run by `make bench`).
unit:
	$(CARGO) test --workspace --lib --bins --tests --locked

validate:
	$(CARGO) run --release --quiet -- validate -f examples/ -v

# Generated artefacts, with the copies deploy/ (kustomize) installs.
crd:
	$(CARGO) run --quiet -- crd > crds/managedroost.yaml
	cp crds/managedroost.yaml deploy/crd.yaml

webhook-config:
	$(CARGO) run --quiet -- webhook-config > webhook-config/webhooks.yaml
	cp webhook-config/webhooks.yaml deploy/webhooks.yaml

bench:
	$(CARGO) bench --bench validation
	$(CARGO) bench --bench load
	$(CARGO) bench --bench controller
