# shellcheck shell=bash
# Shared by scripts/run, scripts/test and scripts/bench: source it, don't run it.
#
#   TROUPE_ROOT                 the repository root (absolute)
#   log / warn / die            messages on stderr, prefixed with the script's name
#   on_exit CMD...              run CMD at exit (last registered runs first), also on INT/TERM
#   ensure_packages [PKG...]    apt-install whatever of TROUPE_PACKAGES (and PKG...) is missing
#   configure_and_build DIR [CMAKE_ARGS...]
#                               cmake configure + build of DIR (relative to TROUPE_ROOT), Release
#                               unless CMAKE_ARGS says otherwise; TROUPE_BUILD_TARGETS (space
#                               separated) limits what is built
#   free_port                   prints a currently free TCP port on 127.0.0.1
#   start_test_postgres / stop_test_postgres
#                               a throw-away PostgreSQL 15 cluster on a unix socket; exports
#                               TROUPE_TEST_PG (libpq conninfo); stopped and removed at exit

if [[ -n ${TROUPE_COMMON_SH:-} ]]; then
  return 0
fi
TROUPE_COMMON_SH=1

# Every Debian package the scripts, the build and the tests need: the one list.
TROUPE_PACKAGES=(
  build-essential cmake ccache pkg-config
  libcaf-dev libboost1.81-dev libpq-dev nlohmann-json3-dev libspdlog-dev libssl-dev libargon2-dev
  postgresql postgresql-contrib
  python3 curl wrk clang-format openssl
)
TROUPE_PG_BIN=/usr/lib/postgresql/15/bin

TROUPE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
TROUPE_SCRIPT=$(basename "$0")

log() {
  printf '[%s %s] %s\n' "$TROUPE_SCRIPT" "$(date +%H:%M:%S)" "$*" >&2
}

warn() {
  log "warning: $*"
}

die() {
  log "error: $*"
  exit 1
}

# --- exit hooks ------------------------------------------------------------------------------
# One EXIT trap for everything a script starts (servers, clusters, temp dirs). INT and TERM
# turn into a normal exit so the hooks run then too.
_troupe_exit_hooks=()

on_exit() {
  _troupe_exit_hooks+=("$(printf '%q ' "$@")")
}

_troupe_run_exit_hooks() {
  local i
  for ((i = ${#_troupe_exit_hooks[@]} - 1; i >= 0; i--)); do
    eval "${_troupe_exit_hooks[i]}" || true
  done
  _troupe_exit_hooks=()
}

trap _troupe_run_exit_hooks EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages --------------------------------------------------------------------------------
# Installs nothing (and runs no `apt-get update`) when every package is already installed.
ensure_packages() {
  local wanted=("${TROUPE_PACKAGES[@]}" "$@") missing=() pkg
  local -A installed=()
  while read -r pkg status; do
    if [[ $status == installed ]]; then
      installed[$pkg]=1
    fi
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${wanted[@]}" 2>/dev/null || true)
  for pkg in "${wanted[@]}"; do
    if [[ -z ${installed[$pkg]:-} ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi

  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing packages: ${missing[*]} (run as root to install them)"
    sudo=(sudo)
  fi
  log "installing missing packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- build -----------------------------------------------------------------------------------
# The OpenAPI validator used by the lint/openapi test (tests/openapi, pinned by its
# package-lock.json). Node and npm come from the machine, or from Debian when missing.
ensure_openapi_validator() {
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
  if [[ -d $TROUPE_ROOT/tests/openapi/node_modules/@seriousme/openapi-schema-validator ]]; then
    return 0
  fi
  log "installing the OpenAPI validator (npm ci in tests/openapi)"
  (cd "$TROUPE_ROOT/tests/openapi" && npm ci --no-audit --no-fund --loglevel=error)
}

# The JOSE library the e2e auth tests verify access tokens with against the server's JWKS
# (tests/jose, pinned by its package-lock.json). Installed once; offline afterwards.
ensure_jose_verifier() {
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
  if [[ -f $TROUPE_ROOT/tests/jose/node_modules/jose/package.json ]]; then
    return 0
  fi
  log "installing the JOSE verifier (npm ci in tests/jose)"
  (cd "$TROUPE_ROOT/tests/jose" && npm ci --no-audit --no-fund --loglevel=error)
}

configure_and_build() {
  local dir=$1
  shift
  if command -v ccache >/dev/null 2>&1; then
    # Relative paths in the cache key: a fresh clone elsewhere still hits the cache.
    export CCACHE_BASEDIR=$TROUPE_ROOT
    export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ccache}
  fi
  local targets=()
  if [[ -n ${TROUPE_BUILD_TARGETS:-} ]]; then
    read -r -a targets <<<"$TROUPE_BUILD_TARGETS"
    targets=(--target "${targets[@]}")
  fi
  log "configuring $dir"
  cmake -S "$TROUPE_ROOT" -B "$TROUPE_ROOT/$dir" -DCMAKE_BUILD_TYPE=Release "$@"
  log "building $dir with $(nproc) jobs"
  cmake --build "$TROUPE_ROOT/$dir" -j"$(nproc)" "${targets[@]}"
}

# --- ports -----------------------------------------------------------------------------------
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    return
  fi
  local port tries
  for ((tries = 0; tries < 100; tries++)); do
    port=$((20000 + RANDOM % 40000))
    # A refused connection means nobody listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# --- throw-away PostgreSQL -------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root we run its binaries as the `postgres` user (which
# Debian's postgresql package creates); as anyone else, as that user.
_as_pg_user() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_test_postgres() {
  [[ -x $TROUPE_PG_BIN/initdb ]] || die "$TROUPE_PG_BIN/initdb not found (package postgresql-15)"
  if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || die "no postgres user (package postgresql)"
  fi
  # Directly under /tmp (mode 1777) so the postgres user can reach the socket dir, whatever
  # TMPDIR says; the data dir below it keeps PostgreSQL's required 0700.
  TROUPE_PG_DIR=$(mktemp -d /tmp/troupe-pg.XXXXXX)
  on_exit stop_test_postgres
  chmod 0755 "$TROUPE_PG_DIR"
  if ((EUID == 0)); then
    chown postgres: "$TROUPE_PG_DIR"
  fi
  local port
  port=$(free_port)

  if ! _as_pg_user "$TROUPE_PG_BIN/initdb" -D "$TROUPE_PG_DIR/data" -U postgres -A trust \
    -E UTF8 --locale=C >"$TROUPE_PG_DIR/initdb.log" 2>&1; then
    cat "$TROUPE_PG_DIR/initdb.log" >&2
    die "initdb failed"
  fi
  # Unix socket only, no durability: a test cluster lives for one run. TROUPE_TEST_PG_DURABLE=1
  # keeps PostgreSQL's durable defaults (fsync, synchronous commit), for benches that must
  # pay for commits as production does.
  local settings=(
    "listen_addresses=''" "unix_socket_directories='$TROUPE_PG_DIR'" "port=$port"
    max_connections=200
  )
  if [[ ${TROUPE_TEST_PG_DURABLE:-} != 1 ]]; then
    settings+=(fsync=off synchronous_commit=off full_page_writes=off)
  fi
  if ! _as_pg_user "$TROUPE_PG_BIN/pg_ctl" -D "$TROUPE_PG_DIR/data" -l "$TROUPE_PG_DIR/postgres.log" \
    -w -t 30 -o "${settings[*]/#/-c }" start >/dev/null; then
    cat "$TROUPE_PG_DIR/postgres.log" >&2
    die "PostgreSQL did not start"
  fi
  export TROUPE_TEST_PG="host=$TROUPE_PG_DIR port=$port user=postgres dbname=postgres"
  log "test PostgreSQL up: TROUPE_TEST_PG=\"$TROUPE_TEST_PG\""
}

stop_test_postgres() {
  local dir=${TROUPE_PG_DIR:-}
  [[ -n $dir && -d $dir ]] || return 0
  if [[ -f $dir/data/postmaster.pid ]]; then
    local pid
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    _as_pg_user "$TROUPE_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop \
      >/dev/null 2>&1 || true
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
  unset TROUPE_PG_DIR TROUPE_TEST_PG
}

# Prints the last lines of the test cluster's server log (for a failed run).
show_test_postgres_log() {
  local file=${TROUPE_PG_DIR:-}/postgres.log
  if [[ -f $file ]]; then
    log "last lines of the test PostgreSQL log:"
    tail -n "${1:-40}" "$file" >&2
  fi
}
