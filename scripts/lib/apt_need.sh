# Sourced, not run. apt_need TAG PACKAGE...: installs, with apt, those of the Debian packages
# that are not installed yet (one `apt-get update` only when something is missing); TAG prefixes
# the message. Uses sudo when not root. The one home of this loop for scripts/setup.sh,
# podman_setup.sh and slurm_local.sh.
apt_need() {
  local tag=$1 p sudo=""
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "$tag: Debian packages present"
    return 0
  fi
  echo "$tag: installing ${missing[*]}"
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
