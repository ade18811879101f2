#!/usr/bin/env bash
# The whole test suite: prerequisites, lint, typecheck, then every vitest suite against real
# Postgres, Docker, PTYs and Chromium. Ends with the plain line "N passed, N failed"; lint,
# formatting and typecheck count as one test each.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
step() { # name, command...
  local name="$1"; shift
  echo "==> $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

if ! bash scripts/ensure-prereqs.sh; then
  echo "prerequisites could not be installed (see above)"
  failed=$((failed + 1))
fi
step lint npx eslint . --max-warnings 0
step format npx prettier --check --log-level warn .
step typecheck npx tsc -p tsconfig.json --noEmit

report="$(mktemp -t berth-vitest-XXXXXX.json)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report"
vitest_rc=$?
counts="$(node -e '
  const fs = require("fs");
  let r = {};
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch {}
  const p = r.numPassedTests ?? 0, f = (r.numFailedTests ?? 0) + (r.numRuntimeErrors ?? 0);
  // A suite that failed to load has no tests; count it so it cannot pass silently.
  const broken = (r.testResults ?? []).filter((t) => t.status === "failed" && (t.assertionResults ?? []).length === 0).length;
  console.log(p, f + broken);
' "$report")"
rm -f "$report"
read -r vp vf <<<"$counts"
passed=$((passed + ${vp:-0}))
failed=$((failed + ${vf:-0}))
if [ "$vitest_rc" -ne 0 ] && [ "${vf:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "vitest exited $vitest_rc"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
