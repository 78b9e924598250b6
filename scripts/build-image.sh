#!/usr/bin/env bash
# build-image.sh — `make image`: the Debian 12 appliance image and its
# evidence, end to end. Each step prints "== image: step N/M NAME", logs to
# out/logs/NAME.log (kept), and on failure says which step failed and where
# its log is. Run from the repository root (make does).
#
# Environment (make passes these through):
#   FORMAT   qcow2 (default) | raw | vmdk (qcow2 plus a streamOptimized VMDK)
#   POLICY   operator policy file merged over the embedded defaults (default none)
#   OPERATOR_KEY  public key file of an operator account for test builds
#            (make e2e); empty builds an image without one
#   VERSION  version stamped into the binaries
#   ACCELERATOR  kvm | tcg (make picks kvm when /dev/kvm exists)
#   OUT      output root (default out)
#   FROM     resume at this step (e.g. FROM=build after fixing a VM-side
#            failure); earlier steps are skipped and say so
set -euo pipefail

FORMAT=${FORMAT:-qcow2}
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
IMAGES=$OUT/images/debian-12-$FORMAT
EVIDENCE=$OUT/evidence/debian-12-$FORMAT
RESULTS=$OUT/results/debian-12-$FORMAT
BASE_JSON=$OUT/base.json
STEPS=(bins base plugin init validate build evidence)

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

case $FORMAT in
qcow2 | raw) PACKER_FORMAT=$FORMAT VMDK=false ;;
vmdk) PACKER_FORMAT=qcow2 VMDK=true ;;
*) usage "FORMAT=$FORMAT: must be qcow2, raw or vmdk" ;;
esac
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
		-var "accelerator=$ACCELERATOR" -var "format=$PACKER_FORMAT" -var "vmdk=$VMDK"
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
	"$BIN/packer" validate -evaluate-datasources "${VARS[@]}" images/debian-12.pkr.hcl
}

build() {
	packer_vars
	rm -rf "$RESULTS"
	# -force: a previous build's output_dir is replaced, not an error.
	PACKER_LOG=${PACKER_LOG:-0} "$BIN/packer" build -force -color=false -timestamp-ui "${VARS[@]}" images/debian-12.pkr.hcl
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
step evidence evidence

echo "image:    $(ls -1 "$IMAGES"/bulwark-debian-12.* | tr '\n' ' ')"
echo "evidence: $EVIDENCE"
echo "report:   $RESULTS/results.json"
echo "logs:     $LOGS"
