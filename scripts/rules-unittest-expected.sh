#!/bin/sh
# Regenerates the expected promtool output of the `strata tools rules test` corpus:
# for each tests/rules/unittest/*.yml test file, promtool's stdout, stderr and exit code
# go to tests/rules/unittest/expected/<name>.{stdout,stderr,rc}. Needs promtool 2.42
# (Debian's `prometheus` package); runs from the test directory so paths print as
# `<name>.yml`.
set -eu
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
cd "$(dirname "$0")/../tests/rules/unittest"
mkdir -p expected
for f in *.yml; do
    n=${f%.yml}
    rc=0
    "$PROMTOOL" test rules "$f" >"expected/$n.stdout" 2>"expected/$n.stderr" || rc=$?
    echo "$rc" >"expected/$n.rc"
    echo "$f: exit $rc"
done
