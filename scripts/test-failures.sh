#!/usr/bin/env bash
# test-failures.sh LOG [LINES]: from a `go test` log (with or without -v), print what each
# failed top-level test said last — the first line of each of its last
# LINES (default 12) log messages, cut to 300 characters — then its FAIL
# line. CI keeps only the tail of a run's output, and a live test's
# failure sits hundreds of lines above it (console tails, the other
# group's progress), so the Makefile prints this digest last.
# A panic (a timeout is one) adds LINES lines from the panic on; a run
# with no FAIL line at all (a build failure) gets its last LINES lines.
set -euo pipefail
log=${1:?usage: test-failures.sh LOG [LINES]}
n=${2:-12}
awk -v n="$n" '
function clip(s) { return length(s) > 300 ? substr(s, 1, 300) "..." : s }
{ all[NR] = $0 }
/^=== (RUN|CONT|PAUSE|NAME) / { cur = $3; sub(/\/.*/, "", cur); next }
# Without -v the messages of a failed test follow its FAIL line.
/^--- FAIL: / { failed[++nf] = $3; line[$3] = $0; cur = $3; next }
# A message'"'"'s first line is indented 4 spaces per test level; its
# continuation lines 8 or more past that. Keep first lines only.
cur != "" && /^ +[^ ]/ && match($0, /^ +/) && RLENGTH % 4 == 0 && $0 ~ /^ +[^ ]+:[0-9]+: / {
	k = ++cnt[cur]; msg[cur, k] = clip($0)
}
/^panic: / && !panicked { panicked = NR }
END {
	for (i = 1; i <= nf; i++) {
		t = failed[i]
		print "---- " t ": its last messages"
		for (k = (cnt[t] > n ? cnt[t] - n + 1 : 1); k <= cnt[t]; k++) print msg[t, k]
		print line[t]
	}
	# A timeout panics with the tests still running listed after it.
	if (panicked) {
		print "---- panicked:"
		for (k = panicked; k < panicked + n && k <= NR; k++) print clip(all[k])
	} else if (nf == 0) {
		print "---- no --- FAIL line (build failure?): the last " n " lines"
		for (k = (NR > n ? NR - n + 1 : 1); k <= NR; k++) print clip(all[k])
	}
}' "$log"
