#!/usr/bin/env bash
# Runs every test of mcr: C unit tests (ctest, AddressSanitizer/UBSan build),
# the C tools' self-test, and all Deno tests (unit + network-namespace tests;
# the latter need root and skip with a message otherwise).
# Ends with the line "N passed, N failed"; the line before it counts (and names) the skips.
set -uo pipefail
cd "$(dirname "$0")/.."
DENO="${DENO:-$(command -v deno || true)}"
if [[ -z "$DENO" ]]; then
  echo "deno not found: run this through 'npx -y deno@2.9.6 task test'" >&2
  exit 2
fi
passed=0 failed=0 skipped=0
section() { printf '\n=== %s ===\n' "$*"; }

section "build (release)"
if ! bash scripts/build.sh; then
  echo "release build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

section "C unit tests (ctest, ASan/UBSan)"
if cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DMCR_SANITIZE=ON >/dev/null &&
  cmake --build build-test -j"$(nproc)" >/dev/null; then
  out=$(ctest --test-dir build-test --output-on-failure 2>&1)
  echo "$out"
  # "100% tests passed, 0 tests failed out of 7"
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" <<<"$out" | tail -1)
  if [[ -n "$line" ]]; then
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
    s=$(grep -cE "\*\*\*Skipped|Not Run" <<<"$out" || true)
    passed=$((passed + total - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
  else
    failed=$((failed + 1))
  fi
else
  echo "sanitizer build failed" >&2
  failed=$((failed + 1))
fi

section "C unit tests under valgrind (release build, leak check)"
if command -v valgrind >/dev/null; then
  out=$(ctest --test-dir build -R '^valgrind_' --output-on-failure 2>&1)
  echo "$out"
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" <<<"$out" | tail -1)
  if [[ -n "$line" ]]; then
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
    passed=$((passed + total - f)); failed=$((failed + f))
  else
    failed=$((failed + 1))
  fi
else
  echo "valgrind not installed: skipped"
  skipped=$((skipped + 1))
fi

section "C tools self-test"
if [[ -x csrc/tools/selftest.sh ]]; then
  bash csrc/tools/selftest.sh; rc=$?
  if [[ $rc -eq 0 ]]; then passed=$((passed + 1));
  elif [[ $rc -eq 77 ]]; then skipped=$((skipped + 1));
  else failed=$((failed + 1)); fi
fi

section "TypeScript: deno check, fmt --check, lint (every .ts file)"
# One check each; a failure names the files.
mapfile -t ts_files < <(git ls-files --cached --others --exclude-standard '*.ts' | grep -v '^bench/results/' || true)
if ((${#ts_files[@]})); then
  for step in check fmt lint; do
    case $step in
      check) cmd=("$DENO" check "${ts_files[@]}") ;;
      fmt) cmd=("$DENO" fmt --check) ;;
      lint) cmd=("$DENO" lint) ;;
    esac
    if out=$("${cmd[@]}" 2>&1); then
      echo "deno $step: ok"
      passed=$((passed + 1))
    else
      echo "$out" | tail -40
      echo "deno $step: FAILED"
      failed=$((failed + 1))
    fi
  done
fi

section "C style: clang-format --dry-run on csrc/ and bench/"
if command -v clang-format >/dev/null; then
  mapfile -t c_files < <(git ls-files --cached --others --exclude-standard 'csrc/*.[ch]' 'bench/*.[ch]')
  if out=$(clang-format --dry-run -Werror "${c_files[@]}" 2>&1); then
    echo "clang-format: ok"
    passed=$((passed + 1))
  else
    echo "$out" | head -40
    echo "clang-format: FAILED (run: clang-format -i \$(git ls-files 'csrc/*.[ch]' 'bench/*.[ch]'))"
    failed=$((failed + 1))
  fi
else
  echo "clang-format not installed: skipped (CI installs it)"
  skipped=$((skipped + 1))
fi

section "Deno tests"
junit=build-test/deno-junit.xml
mkdir -p build-test
rm -f "$junit"
MCR_LIB="$PWD/build/libmcr.so" "$DENO" test --allow-all --junit-path="$junit" tests/
rc=$?
if [[ -f "$junit" ]]; then
  t=$(grep -oE '<testsuites [^>]*tests="[0-9]+"' "$junit" | grep -oE 'tests="[0-9]+"' | grep -oE '[0-9]+')
  f=$(grep -oE '<testsuites [^>]*failures="[0-9]+"' "$junit" | grep -oE 'failures="[0-9]+"' | grep -oE '[0-9]+')
  e=$(grep -oE '<testsuites [^>]*errors="[0-9]+"' "$junit" | grep -oE 'errors="[0-9]+"' | grep -oE '[0-9]+')
  s=$(grep -c '<skipped' "$junit" || true)
  passed=$((passed + ${t:-0} - ${f:-0} - ${e:-0} - s)); failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + s))
  if [[ $rc -ne 0 && ${f:-0} -eq 0 && ${e:-0} -eq 0 ]]; then failed=$((failed + 1)); fi
else
  failed=$((failed + 1))
fi

# Skipped Deno tests by name (a skip is not a pass: say which).
names=""
if [[ -f "$junit" ]]; then
  # <testcase name="..." ...> on one line, <skipped/> on the next
  names=$(grep -B1 '<skipped' "$junit" | grep -oE '<testcase name="[^"]*"' |
    sed -E 's/<testcase name="(.*)"$/\1/' | paste -sd ';' - || true)
fi
echo
echo "$skipped skipped${names:+: $names}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
