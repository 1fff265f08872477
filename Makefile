# The README's two commands: `make dev` (a local control plane with
# roost-keeper serving, ready for kubectl apply) and `make test` (everything
# CI checks; .ci/run calls it).

CARGO ?= cargo

.PHONY: dev test check cluster tools promtool helm podman chromium image dashboard-screenshot fmt-check clippy tests-with-e2e validate generate crd schema webhook-config flag-tables docs bench soak fuzz

dev: cluster
	$(CARGO) build --release --locked -p roost-keeper --bin roost-keeper
	$(CARGO) run --release --locked --quiet -p roost-testcluster --bin roost-dev

test: cluster tools promtool helm podman chromium image fmt-check clippy tests-with-e2e

# Integration tests that need no control plane, container image or built tool.
IN_PROCESS_TESTS = abuse admission_https cli_explain cli_generated cli_modes cli_validate crd_drift crd_pins dependency_direction \
	conversion_props defaults_props deploy_drift docs_links fuzz_regressions http_router out_dir review_deadline serve_binary

# The inner loop: formatting, lints, unit tests and the in-process integration
# tests (33 s warm on the 2-vCPU machine; `make test` runs everything).
check: fmt-check clippy
	$(CARGO) test --workspace --lib --bins --locked $(addprefix --test ,$(IN_PROCESS_TESTS))

# Builds kube-apiserver, kube-controller-manager, etcd and kubectl from source when missing (cached under .cache/).
cluster:
	tests/cluster/build.sh >/dev/null

# Builds kubeconform (Go module proxy) and a Python venv with jsonschema, pinned
# in tests/tools/, for tests/schema.rs (cached under .cache/tools/).
tools:
	tests/tools/build.sh >/dev/null

# Builds promtool (Go module proxy), pinned in tests/tools/promtool/, for
# tests/monitoring.rs (cached under .cache/tools/promtool-<key>/).
promtool:
	tests/tools/promtool.sh >/dev/null

# Builds helm (Go module proxy), pinned in tests/tools/helm/, for
# tests/helm_chart.rs and tests/e2e_helm.rs (cached under .cache/tools/).
helm:
	tests/tools/helm.sh >/dev/null

# podman, runc and musl-gcc for the image and tests/e2e_image.rs: installed
# with apt-get when missing (as root), otherwise a failure saying what to install.
podman:
	image/install.sh

# chromium (headless, over the DevTools protocol) for the dashboard's browser
# test tests/e2e_dashboard.rs: installed with apt-get when missing (as root),
# otherwise a failure saying what to install.
chromium:
	tests/browser/install.sh

# docs/dashboard.png, the lifecycle dashboard on a 1280x800 screen, taken by
# its browser test on a local control plane.
dashboard-screenshot: cluster chromium
	DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(CARGO) test --locked --test e2e_dashboard

# localhost/roost-keeper:<version> and :dev, FROM scratch, from a static musl
# binary built here (image/build.sh; no registry needed).
image:
	CARGO=$(CARGO) image/build.sh >/dev/null

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Every test: unit, HTTPS and the end-to-end tests on local control planes
# (benches are built by clippy, run by `make bench`).
tests-with-e2e:
	$(CARGO) test --workspace --lib --bins --tests --locked

validate:
	$(CARGO) run --release --quiet -- validate -f examples/ -v

# Every checked-in artefact the binary generates (drift tests compare them).
generate: crd schema webhook-config flag-tables

# Generated artefacts, with the copies deploy/ (kustomize) and the chart install.
crd:
	$(CARGO) run --quiet -- crd > crds/managedroost.yaml
	$(CARGO) run --quiet -- crd --kind roostpolicy > crds/roostpolicy.yaml
	$(CARGO) run --quiet -- crd --kind roostpolicyexception > crds/roostpolicyexception.yaml
	cp crds/managedroost.yaml deploy/crd.yaml
	cp crds/roostpolicy.yaml deploy/crd-roostpolicy.yaml
	cp crds/roostpolicyexception.yaml deploy/crd-roostpolicyexception.yaml
	cp crds/managedroost.yaml crds/roostpolicy.yaml crds/roostpolicyexception.yaml charts/roost-keeper/crds/

# JSON Schemas for editors and kubeconform, named as kubeconform looks them up.
schema:
	$(CARGO) run --quiet -- schema --out-dir schemas/ >/dev/null

webhook-config:
	$(CARGO) run --quiet -- webhook-config > webhook-config/webhooks.yaml
	cp webhook-config/webhooks.yaml deploy/webhooks.yaml

# The flag tables of docs/: the block between `<!-- CMD-flags:begin -->` and
# `<!-- CMD-flags:end -->` in PAGE becomes `roost-keeper man --flags-markdown CMD`
# (tests/cli_generated.rs fails when one differs).
FLAG_TABLES = serving.md:serve serving.md:webhook-config serving.md:crd validate.md:validate
flag-tables:
	mkdir -p .cache
	for table in $(FLAG_TABLES); do \
		page=docs/$${table%%:*}; cmd=$${table#*:}; \
		$(CARGO) run --quiet --locked -p roost-keeper --bin roost-keeper -- man --flags-markdown $$cmd > .cache/flags.md && \
		awk -v table=.cache/flags.md -v begin="<!-- $$cmd-flags:begin -->" -v end="<!-- $$cmd-flags:end -->" \
			'$$0 == end { skip = 0 } !skip { print } $$0 == begin { print ""; while ((getline line < table) > 0) print line; close(table); print ""; skip = 1 }' \
			$$page > $$page.new && mv $$page.new $$page || exit 1; \
	done

# The docs as a website (mdBook, book.toml; output in book/). Not part of
# `make test`: installs the pinned mdbook under .cache/tools/ when missing.
MDBOOK_VERSION = 0.5.4
MDBOOK = .cache/tools/mdbook-$(MDBOOK_VERSION)/bin/mdbook
docs: $(MDBOOK)
	$(MDBOOK) build

$(MDBOOK):
	$(CARGO) install mdbook --locked --version $(MDBOOK_VERSION) --no-default-features --features search \
		--root .cache/tools/mdbook-$(MDBOOK_VERSION)

bench:
	$(CARGO) bench --bench validation
	$(CARGO) bench --bench load
	$(CARGO) bench --bench controller
	$(CARGO) bench --bench lifecycle_stream

# 30 minutes at half the mixed workload's throughput; figures in BENCHMARKS.md.
soak:
	LOAD_SOAK_SECONDS=1800 LOAD_WARMUP_SECONDS=360 $(CARGO) bench --bench load

# Coverage-guided fuzzing (nightly + cargo-fuzz), FUZZ_SECONDS per target;
# `make test` replays the seeds and the saved crash inputs on stable.
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	fuzz/run.sh $(FUZZ_SECONDS)
