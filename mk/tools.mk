# mk/tools.mk — pinned external tools and bulwark's Packer plugin.
# Included by the top-level Makefile. Everything builds from the Go module
# proxy through tools/go.mod (and tools/pulumi/go.mod); nothing downloads a
# binary from elsewhere.
#
#   make tools            packer, packer-plugin-qemu, packer-sdc, pulumi → ./bin
#   make plugin           ./bin/packer-plugin-bulwark, installed (with qemu) into $(PACKER_PLUGIN_PATH)
#   make packer-init      packer init of both templates against the local plugin dir (no download)
#   make validate         packer validate of images/debian-13 and images/ubuntu-24.04
#   make generate         regenerate packer/**/*.hcl2spec.go with the pinned packer-sdc
#   make generate-check   fail when the committed *.hcl2spec.go differ from a fresh generate
#
# Built tools are cached outside the clone, keyed by name and version
# ($(TOOLS_CACHE)/packer-v1.11.2 …), so a machine that built them once —
# a CI runner included — only copies them into ./bin. Bumping a version
# below is the only way to rebuild: the cache key does not follow tools/go.sum.

PACKER_VERSION      := v1.11.2
PACKER_QEMU_VERSION := v1.0.9
PACKER_SDC_VERSION  := v0.6.9
PULUMI_VERSION      := v3.256.0

BIN         ?= $(CURDIR)/bin
TOOLS_CACHE ?= $(HOME)/.cache/bulwark/tools
# Packer 1.11 loads only installed plugins; keep ours inside the clone so
# builds never touch ~/.config/packer.
PACKER_PLUGIN_PATH ?= $(CURDIR)/.cache/packer-plugins
export PACKER_PLUGIN_PATH
# Never phone home for checkpoint (version/security) notices.
export CHECKPOINT_DISABLE := 1

GUEST_ARCH   ?= amd64
GUEST_BIN    ?= $(BIN)/linux-$(GUEST_ARCH)
BUILD_KEY    ?= $(CURDIR)/.cache/build-key/id_ed25519
# `make validate` does not boot anything; a placeholder base path is enough
# there, `make image` passes the real one.
BASE_IMAGE   ?= $(CURDIR)/.cache/base/debian-13.qcow2
# KVM only when the CPU offers hardware virtualization too (qemu.KVMUsable):
# a /dev/kvm without it hangs the guest before its bootloader.
ACCELERATOR  ?= $(if $(and $(wildcard /dev/kvm),$(shell grep -qwE 'vmx|svm' /proc/cpuinfo && echo y)),kvm,tcg)

TOOLS_GO  = cd $(CURDIR)/tools && go build -trimpath
PULUMI_GO = cd $(CURDIR)/tools/pulumi && go build -trimpath \
	-ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)"

.PHONY: tools packer packer-qemu packer-sdc pulumi plugin plugin-build guest-bins build-key \
	packer-init validate generate generate-check

tools: packer packer-qemu packer-sdc pulumi

packer:      $(BIN)/packer
packer-qemu: $(BIN)/packer-plugin-qemu
packer-sdc:  $(BIN)/packer-sdc
pulumi:      $(BIN)/pulumi

# Cache entries: built once per name+version, atomically (a killed build
# leaves no half binary under the final name).
$(TOOLS_CACHE)/packer-$(PACKER_VERSION):
	@mkdir -p $(@D)
	@echo "tools: building packer $(PACKER_VERSION) (cached in $@)"
	$(TOOLS_GO) -o $@.tmp github.com/hashicorp/packer && mv $@.tmp $@

$(TOOLS_CACHE)/packer-plugin-qemu-$(PACKER_QEMU_VERSION):
	@mkdir -p $(@D)
	@echo "tools: building packer-plugin-qemu $(PACKER_QEMU_VERSION) (cached in $@)"
	$(TOOLS_GO) -o $@.tmp github.com/hashicorp/packer-plugin-qemu && mv $@.tmp $@

$(TOOLS_CACHE)/packer-sdc-$(PACKER_SDC_VERSION):
	@mkdir -p $(@D)
	@echo "tools: building packer-sdc $(PACKER_SDC_VERSION) (cached in $@)"
	$(TOOLS_GO) -o $@.tmp github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc && mv $@.tmp $@

$(TOOLS_CACHE)/pulumi-$(PULUMI_VERSION):
	@mkdir -p $(@D)
	@echo "tools: building pulumi $(PULUMI_VERSION) (cached in $@)"
	$(PULUMI_GO) -o $@.tmp github.com/pulumi/pulumi/pkg/v3/cmd/pulumi && mv $@.tmp $@

# ./bin copies depend on the cache entry, so a version bump re-copies.
$(BIN)/packer: $(TOOLS_CACHE)/packer-$(PACKER_VERSION)
$(BIN)/packer-plugin-qemu: $(TOOLS_CACHE)/packer-plugin-qemu-$(PACKER_QEMU_VERSION)
$(BIN)/packer-sdc: $(TOOLS_CACHE)/packer-sdc-$(PACKER_SDC_VERSION)
$(BIN)/pulumi: $(TOOLS_CACHE)/pulumi-$(PULUMI_VERSION)
$(BIN)/packer $(BIN)/packer-plugin-qemu $(BIN)/packer-sdc $(BIN)/pulumi:
	@mkdir -p $(@D)
	install -m 0755 $< $@

# Our plugin is product code: always rebuilt (go build is incremental), then
# installed under the version its describe prints, with the qemu plugin
# beside it, so `packer init` finds both without downloading.
plugin-build:
	@mkdir -p $(BIN)
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/packer-plugin-bulwark ./cmd/packer-plugin-bulwark

plugin: plugin-build $(BIN)/packer $(BIN)/packer-plugin-qemu
	@mkdir -p $(PACKER_PLUGIN_PATH)
	$(BIN)/packer plugins install --path $(BIN)/packer-plugin-qemu github.com/hashicorp/qemu
	$(BIN)/packer plugins install --path $(BIN)/packer-plugin-bulwark github.com/bulwark-appliance/bulwark
	@$(BIN)/packer plugins installed

# Static guest binaries for the provisioner (the guest has no Go toolchain
# and may have another libc).
guest-bins:
	@mkdir -p $(GUEST_BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GUEST_ARCH) go build -trimpath -ldflags '$(LDFLAGS)' -o $(GUEST_BIN)/bulwark ./cmd/bulwark
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GUEST_ARCH) go build -trimpath -ldflags '$(LDFLAGS)' -o $(GUEST_BIN)/transferd ./cmd/transferd

# A throwaway build key, made once per clone; bulwark-harden removes its
# public half from the image.
build-key: $(BUILD_KEY)
$(BUILD_KEY):
	@mkdir -p $(@D)
	ssh-keygen -q -t ed25519 -N '' -C bulwark-build -f $@

PACKER_VARS = \
	-var 'ssh_private_key_file=$(BUILD_KEY)' -var 'build_public_key=$(BUILD_KEY).pub' \
	-var 'bulwark_binary=$(GUEST_BIN)/bulwark' -var 'transferd_binary=$(GUEST_BIN)/transferd' \
	-var 'accelerator=$(ACCELERATOR)'

# Packer 1.11's init ignores pre-release plugins (command/init.go sets
# ReleasesOnly) and would try to download a -dev bulwark plugin, so init
# runs only for release versions; validate and build load the installed
# -dev plugin either way. tests/packer_test.go runs init with a release build.
packer-init: plugin
	@case "$(VERSION)" in *-dev) \
		echo "packer-init: skipped for $(VERSION): packer init ignores -dev plugins; both are installed in $(PACKER_PLUGIN_PATH)";; \
	*) $(BIN)/packer init images/debian-13.pkr.hcl && $(BIN)/packer init images/ubuntu-24.04.pkr.hcl;; esac

# -evaluate-datasources: bulwark-policy really loads the policy (without it
# Packer mocks the data source with zeros and disk_size is invalid).
# Ubuntu's checksum default is a file: URL the qemu plugin fetches while
# validating; offline it is replaced by "none" here and only here.
validate: packer-init guest-bins build-key
	$(BIN)/packer validate -evaluate-datasources $(PACKER_VARS) -var 'base_image=$(BASE_IMAGE)' images/debian-13.pkr.hcl
	$(BIN)/packer validate -evaluate-datasources $(PACKER_VARS) -var 'cloud_image_checksum=none' images/ubuntu-24.04.pkr.hcl

# go:generate lines call packer-sdc by name: put the pinned one first on PATH.
generate: $(BIN)/packer-sdc
	PATH="$(BIN):$$PATH" go generate ./packer/...

# Compares checksums rather than asking git, so it works before a commit
# too; a stale file is left regenerated for inspection.
generate-check: $(BIN)/packer-sdc
	@sums=$$(mktemp); find packer -name '*.hcl2spec.go' | sort | xargs sha256sum > $$sums; \
	PATH="$(BIN):$$PATH" go generate ./packer/... || { rm -f $$sums; exit 1; }; \
	if find packer -name '*.hcl2spec.go' | sort | xargs sha256sum | diff $$sums -; then \
		rm -f $$sums; echo "generate-check: *.hcl2spec.go up to date"; \
	else \
		rm -f $$sums; echo "generate-check: *.hcl2spec.go are stale (left regenerated); run 'make generate' and commit"; exit 1; \
	fi
