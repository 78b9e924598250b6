#!/usr/bin/env bash
# build-image.sh — `make image`: the appliance image (DISTRO below), in every
# format customers import, and its evidence, end to end. Packer builds the
# qcow2; the export step writes raw, VMDK, OVA and VHD from that same disk,
# with manifest.json (sizes, SHA-256s) beside them. Each step prints
# "== image: step N/M NAME", logs to out/logs/NAME.log (kept), and on
# failure says which step failed and where its log is. Run from the
# repository root (make does).
#
# Environment (make passes these through):
#   POLICY   operator policy file merged over the embedded defaults (default none)
#   OPERATOR_KEY  public key file of an operator account for test builds
#            (make e2e); empty builds an image without one
#   VERSION  version stamped into the binaries
#   ACCELERATOR  kvm | tcg (make picks kvm when /dev/kvm exists and the CPU has VT-x or AMD-V)
#   OUT      output root (default out)
#   FROM     resume at this step (e.g. FROM=build after fixing a VM-side
#            failure); earlier steps are skipped and say so
set -euo pipefail

# The one place the distro is named: template, VM and directory names, and
# the OVF's guest type, all follow from it.
DISTRO=debian-13
POLICY=${POLICY:-}
OPERATOR_KEY=${OPERATOR_KEY:-}
VERSION=${VERSION:-0.1.0-dev}
ACCELERATOR=${ACCELERATOR:-tcg}
OUT=${OUT:-out}
FROM=${FROM:-}
MAKE=${MAKE:-make}
BIN=${BIN:-$PWD/bin}
GUEST_BIN=$BIN/linux-amd64
LDFLAGS="-s -w -X github.com/bulwark-appliance/bulwark/internal/version.Version=$VERSION"
LOGS=$OUT/logs
TEMPLATE=images/$DISTRO.pkr.hcl
VM_NAME=bulwark-$DISTRO
OS_TYPE=${DISTRO//-/} # debian13: a `bulwark image export --os-type` preset
# The directories keep the "-qcow2" of the format Packer builds, so the
# paths make e2e and the deploy tests use stay as they were.
IMAGES=$OUT/images/$DISTRO-qcow2
EVIDENCE=$OUT/evidence/$DISTRO-qcow2
RESULTS=$OUT/results/$DISTRO-qcow2
BASE_JSON=$OUT/base.json
STEPS=(bins base plugin init validate build export evidence)

n=0
# step NAME CMD... runs CMD with its output in out/logs/NAME.log (and on the
# terminal, so a long packer build shows progress), timing it.
step() {
	local name=$1
	shift
	n=$((n + 1))
	if [[ -n $FROM && $FROM != "$name" ]]; then
		echo "== image: step $n/${#STEPS[@]} $name skipped (FROM=$FROM)"
		return 0
	fi
	FROM=
	echo "== image: step $n/${#STEPS[@]} $name"
	local t0=$SECONDS rc
	# Not "if ! …": bash ignores set -e inside a condition, so a failing
	# command in the middle of a step would go unnoticed.
	set +e
	(set -e; "$@") 2>&1 | tee "$LOGS/$name.log"
	rc=${PIPESTATUS[0]}
	set -e
	if ((rc != 0)); then
		echo "image: step $name failed (exit $rc); logs in $LOGS/$name.log" >&2
		exit 1
	fi
	echo "== image: step $name done in $((SECONDS - t0))s"
}

usage() { echo "image: $*" >&2; exit 2; }

# FORMAT chose one format per build; now every build writes them all. Say
# so rather than ignore it, so nobody waits for a build they did not ask for.
if [[ -n ${FORMAT:-} ]]; then usage "FORMAT=$FORMAT: gone; every build writes qcow2, raw, vmdk, ova and vhd (see bulwark image export --help)"; fi
if [[ -n $FROM && " ${STEPS[*]} " != *" $FROM "* ]]; then usage "FROM=$FROM: not a step (${STEPS[*]})"; fi
if [[ -n $POLICY && ! -r $POLICY ]]; then usage "POLICY=$POLICY: no such readable file"; fi
if [[ -n $OPERATOR_KEY && ! -r $OPERATOR_KEY ]]; then usage "OPERATOR_KEY=$OPERATOR_KEY: no such readable file"; fi
# Packer resolves relative paths against its working directory; make them
# absolute so the template's defaults do not matter.
[[ -n $POLICY ]] && POLICY=$(realpath "$POLICY")
mkdir -p "$LOGS" "$OUT/images" "$OUT/evidence" "$OUT/results"

# Static binaries for the guest. transferd is built against the Go FIPS
# 140-3 module (GOFIPS140), as the appliance ships it.
bins() {
	mkdir -p "$GUEST_BIN"
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "$LDFLAGS" -o "$GUEST_BIN/bulwark" ./cmd/bulwark
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFIPS140=v1.0.0 go build -trimpath -ldflags "$LDFLAGS" -o "$GUEST_BIN/transferd" ./cmd/transferd
	go version -m "$GUEST_BIN/transferd" | grep -E 'GOFIPS140' || { echo "transferd was not built with GOFIPS140"; return 1; }
}

base() {
	"$GUEST_BIN/bulwark" image base --out-json "$BASE_JSON"
}

init_plugins() {
	"$MAKE" --no-print-directory packer-init VERSION="$VERSION"
}

plugin() {
	"$MAKE" --no-print-directory plugin VERSION="$VERSION"
}

j() { jq -er "$1" "$BASE_JSON"; }

packer_vars() {
	VARS=(
		-var "base_image=$(j .path)"
		-var "ssh_private_key_file=$(j .build_key)" -var "build_public_key=$(j .build_public_key)"
		-var "bulwark_binary=$GUEST_BIN/bulwark" -var "transferd_binary=$GUEST_BIN/transferd"
		-var "accelerator=$ACCELERATOR" -var "format=qcow2" -var "vm_name=$VM_NAME"
		-var "output_dir=${1:-$IMAGES}" -var "results_dir=$RESULTS" -var "evidence_dir=$EVIDENCE"
		-var "policy_file=$POLICY"
	)
	if [[ -n $OPERATOR_KEY ]]; then
		VARS+=(-var "operator_authorized_key=$(head -n1 "$OPERATOR_KEY")")
	fi
}

# validate checks the template against an output directory that does not
# exist: the qemu builder refuses an existing one at validate time (build
# has -force, validate has not), so a rebuild into the same OUT would fail
# here although build itself replaces the old image.
validate() {
	packer_vars "$OUT/.validate-$$-never-created"
	"$BIN/packer" validate -evaluate-datasources "${VARS[@]}" "$TEMPLATE"
}

build() {
	packer_vars
	rm -rf "$RESULTS"
	# -force: a previous build's output_dir is replaced, not an error.
	PACKER_LOG=${PACKER_LOG:-0} "$BIN/packer" build -force -color=false -timestamp-ui "${VARS[@]}" "$TEMPLATE"
}

# export writes every other format from the qcow2 Packer built, into the
# same directory (the qcow2 is replaced by its own compacted copy), and
# manifest.json. It is all or nothing: a failure leaves the directory as
# Packer left it, so FROM=export retries just this.
export_formats() {
	"$GUEST_BIN/bulwark" image export --in "$IMAGES/$VM_NAME.qcow2" --out "$IMAGES" \
		--name "$VM_NAME" --os-type "$OS_TYPE"
}

# evidence checks what the post-processor wrote: every control the binary
# knows is in the report, and each is pass, or not-applicable with a
# reason. A control missing from the report would be a silent gap.
evidence() {
	local res=$RESULTS/results.json
	local policy_args=()
	[[ -n $POLICY ]] && policy_args=(--policy "$POLICY")
	"$GUEST_BIN/bulwark" controls --format json "${policy_args[@]}" | jq -r '.[].id' | sort -u >"$LOGS/controls.txt"
	jq -r '.findings[].control_id' "$res" | sort -u >"$LOGS/reported.txt"
	if ! diff -u "$LOGS/controls.txt" "$LOGS/reported.txt"; then
		echo "controls (-) missing from $res"
		return 1
	fi
	local bad
	bad=$(jq -r '.findings[] | select(.status != "pass" and (.status != "not-applicable" or (.reason // "") == "")) | "\(.control_id): \(.status) \(.reason // "")"' "$res")
	if [[ -n $bad ]]; then
		echo "findings neither pass nor reasoned not-applicable:"
		echo "$bad"
		return 1
	fi
	# The patch level the image was verified at, as the manifest records it.
	local pending
	pending=$(jq -r '.security_updates_pending // "absent"' "$EVIDENCE/manifest.json")
	echo "security updates pending at build: $pending"
	if [[ $pending != 0 ]]; then
		echo "the manifest must record 0 pending security updates (updates.patched), not $pending"
		return 1
	fi
	jq -r '.findings | group_by(.status)[] | "\(.[0].status): \(length)"' "$res"
	jq -r '.findings[] | select(.status == "not-applicable") | "  n/a \(.control_id): \(.reason)"' "$res"
	ls -l "$EVIDENCE"
}

step bins bins
step base base
step plugin plugin
step init init_plugins
step validate validate
step build build
step export export_formats
step evidence evidence

echo "images:   $(ls -1 "$IMAGES"/"$VM_NAME".* | tr '\n' ' ')"
echo "manifest: $IMAGES/manifest.json"
echo "evidence: $EVIDENCE"
echo "report:   $RESULTS/results.json"
echo "logs:     $LOGS"
