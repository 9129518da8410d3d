#!/usr/bin/env bash
# Checks, offline and without AWS credentials, that the stack builds the way `sam deploy` will ship it:
#   1. creates or refreshes .venv-sam with the pinned SAM CLI (its own venv: SAM pins its own boto3,
#      cfn-lint and friends, which must not fight the project's .venv);
#   2. `sam validate --lint`;
#   3. `sam build` into a temporary folder (removed on exit);
#   4. checks the artifacts: the layer carries CPython 3.13 / aarch64 binaries and the switchyard
#      package with the dashboard's static files, run.sh is executable, no function ships code built for the build machine.
# Needs python3 (>= 3.11), make, and the package index pip is configured with. Called from CI.
#
#   scripts/sam-build-check.sh            # SAM_VENV, PYTHON and KEEP_BUILD=1 may be set
set -euo pipefail

SAM_CLI_VERSION="1.170.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SAM_VENV:-$ROOT/.venv-sam}"
PYTHON="${PYTHON:-python3}"
export SAM_CLI_TELEMETRY=0

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'sam-build-check: FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

# ---------------------------------------------------------------- 1. SAM CLI
step "SAM CLI $SAM_CLI_VERSION in $VENV"
t0=$(now)
if [[ "$("$VENV/bin/sam" --version 2>/dev/null || true)" != "SAM CLI, version $SAM_CLI_VERSION" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
fi
"$VENV/bin/sam" --version
echo "ready in $(( $(now) - t0 )) s"

cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sam-build-check.XXXXXX")"
if [[ "${KEEP_BUILD:-0}" == "1" ]]; then
    echo "build kept in $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
BUILD="$WORK/build"

# ---------------------------------------------------------------- 2. validate + lint
step "sam validate --lint"
t0=$(now)
"$VENV/bin/sam" validate --lint --template-file template.yaml
echo "validated in $(( $(now) - t0 )) s"

# ---------------------------------------------------------------- 3. build
step "sam build -> $BUILD"
t0=$(now)
# The Makefiles run `python3 -m pip`; any Python >= 3.11 works since wheels are picked for 3.13/aarch64.
"$VENV/bin/sam" build --template-file template.yaml --build-dir "$BUILD" --cache-dir "$WORK/cache"
echo "built in $(( $(now) - t0 )) s"

# ---------------------------------------------------------------- 4. artifacts
step "artifacts"
LAYER="$BUILD/SharedLayer/python"
[[ -d "$LAYER/switchyard" ]] || fail "SharedLayer has no python/switchyard package"
for asset in index.html app.js dashboard.css; do
    [[ -f "$LAYER/switchyard/dashboard/static/$asset" ]] || fail "SharedLayer has no dashboard file switchyard/dashboard/static/$asset"
done
[[ -f "$LAYER/switchyard/front/lambda_app.py" ]] || fail "SharedLayer has no switchyard/front/lambda_app.py (run.sh starts it)"
[[ -n "$(find "$LAYER" -name '_pydantic_core.cpython-313-aarch64-linux-gnu.so' -print -quit)" ]] \
    || fail "SharedLayer has no _pydantic_core.cpython-313-aarch64-linux-gnu.so (wrong wheel platform?)"
wrong_abi="$(find "$BUILD" -name '*.so' ! -name '*cpython-313-aarch64-linux-gnu*' ! -name '*.abi3.so' -print)"
[[ -z "$wrong_abi" ]] || fail "extension modules not built for CPython 3.13 on aarch64: $wrong_abi"
[[ -z "$(find "$BUILD" -name '*.cpython-3[0-9]*.pyc' ! -name '*.cpython-313.pyc' -print -quit)" ]] \
    || fail "bytecode from the build interpreter shipped"
for pkg in pydantic pydantic_settings aws_lambda_powertools httpx h11 starlette uvicorn httptools uvloop aws_xray_sdk wrapt; do
    [[ -d "$LAYER/$pkg" ]] || fail "SharedLayer misses $pkg"
done
for pkg in boto3 botocore yaml; do
    [[ ! -e "$LAYER/$pkg" ]] || fail "SharedLayer ships $pkg (the runtime provides boto3; YAML is not needed)"
done
[[ -f "$BUILD/ApiFunction/app.py" ]] || fail "ApiFunction has no app.py"
[[ -x "$BUILD/StreamFunction/run.sh" ]] || fail "StreamFunction/run.sh is missing or not executable"
grep -q 'Handler: run.sh' "$BUILD/template.yaml" || fail "built template lost StreamFunction's run.sh handler"

du -sh "$BUILD/SharedLayer" "$BUILD/ApiFunction" "$BUILD/StreamFunction" | sed 's/^/  /'
echo
echo "sam-build-check: OK"
