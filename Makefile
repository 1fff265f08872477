# The README's two commands: `make validate` (main job for now: the offline
# validator on examples/) and `make test` (everything CI checks).

CARGO ?= cargo

.PHONY: validate test fmt-check clippy unit crd bench

validate:
	$(CARGO) run --release --quiet -- validate -f examples/ -v

test: fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --all-targets --locked

crd:
	$(CARGO) run --quiet -- crd > crds/managedroost.yaml

bench:
	$(CARGO) bench --bench validation
