# mk/image.mk — the appliance image pipeline. Included by the top-level
# Makefile after mk/tools.mk (which provides plugin, packer-init, BIN,
# ACCELERATOR and PACKER_PLUGIN_PATH).
#
#   make base-image               build or reuse the base disk; prints it (out/base.json)
#   make image                    scripts/build-image.sh: bins → base → plugin →
#                                 init → validate → packer build → export
#                                 (qcow2, raw, vmdk, ova, vhd + manifest.json)
#                                 → evidence check
#   make image POLICY=file.yaml   an operator policy instead of the embedded one
#   make e2e                      make image with the e2e operator key, then boot
#                                 the built image and probe it (tests/e2e_test.go)
#                                 and deploy it locally (tests/live_deploy_test.go)
#
# Outputs: out/images/debian-13-qcow2/ (every format and manifest.json;
# the directory is named after the format Packer builds),
# out/evidence/debian-13-qcow2/, out/results/…/results.json, and one log
# per step in out/logs/.

POLICY       ?=
OUT          ?= $(CURDIR)/out
# The e2e test logs in with this key after the build key is gone (see
# operator_authorized_key in images/debian-13.pkr.hcl).
E2E_KEY      ?= $(CURDIR)/.cache/e2e-key/id_ed25519
# See the file for why it differs from the embedded policy.
E2E_POLICY   ?= $(CURDIR)/tests/testdata/e2e-policy.yaml

.PHONY: image base-image e2e e2e-image e2e-key

base-image:
	@mkdir -p $(OUT)
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/bulwark ./cmd/bulwark
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/bulwark-deploy ./cmd/bulwark-deploy
	$(BIN)/bulwark image base --out-json $(OUT)/base.json

image:
	POLICY='$(POLICY)' OUT='$(OUT)' VERSION='$(VERSION)' BIN='$(BIN)' \
	ACCELERATOR='$(ACCELERATOR)' OPERATOR_KEY='$(OPERATOR_KEY)' \
		scripts/build-image.sh

e2e-key: $(E2E_KEY)
$(E2E_KEY):
	@mkdir -p $(@D)
	ssh-keygen -q -t ed25519 -N '' -C bulwark-e2e -f $@

# The e2e image is a test build (it has an operator account with sudo), so
# it goes to its own output directory and is never the shipped artifact.
# One go test run covers both acceptances on the image just built: TestE2E
# (issue 5: boot, probe from outside, verify inside, break a control) and
# TestLiveDeployLocal (issue 7: `bulwark deploy --target local` brings the
# image up with its LUKS key over fw_cfg, /healthz answers on 443, a reboot
# unlocks again, an admin CIDR change previews as one rule update,
# --destroy leaves nothing behind). Each stage prints "stage NAME: time".
# TestE2E's three boots and TestLiveDeployLocal are parallel tests, two at
# a time (-parallel 2): each is a TCG guest busy on one core, and run one
# after the other they left the second core idle.
# The Pulumi CLI (for TestLiveDeployLocal) builds while the image does:
# the build VM keeps one core busy and mostly leaves the other idle.
E2E_IMAGE    = $(OUT)/e2e/images/debian-13-qcow2/bulwark-debian-13.qcow2
e2e: e2e-key
	@$(MAKE) --no-print-directory -j2 pulumi e2e-image
	$(call digested,BULWARK_LONG=1 BULWARK_E2E_IMAGE=$(E2E_IMAGE) BULWARK_IMAGE=$(E2E_IMAGE) \
	BULWARK_E2E_BASE=$(OUT)/e2e/base.json BULWARK_E2E_KEY=$(E2E_KEY) \
	BULWARK_E2E_EVIDENCE=$(OUT)/e2e/evidence/debian-13-qcow2 \
		go test -count=1 -v -parallel 2 -timeout 40m -run '^(TestE2E|TestLiveDeployLocal)$$' ./tests/)

e2e-image: e2e-key
	@t0=$$(date +%s); \
	$(MAKE) --no-print-directory image OPERATOR_KEY=$(E2E_KEY).pub OUT=$(OUT)/e2e POLICY=$(E2E_POLICY); \
	echo "== e2e: image built in $$(( $$(date +%s) - t0 ))s"
