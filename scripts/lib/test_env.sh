# Sourced, not run: the set-up scripts/test.sh and scripts/sanitize.sh share, from the checkout
# root (ROOT=$PWD). Defines run() (echo a command, then run it) and JOBS (default nproc); runs
# scripts/setup.sh (idempotent); exports the ccache keys and the one fixed locale every build tree
# shares.
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
run() { echo "+ $*"; "$@"; }

run scripts/setup.sh
# ccache keyed on paths relative to the checkout, so that the container image build (its sources
# at /src, tests/docker) reuses these objects instead of compiling everything again.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
# ccache also hashes the locale: the same fixed one as scripts/build.sh (the image build).
export LANG=C.UTF-8
unset LC_ALL LC_CTYPE LC_MESSAGES
