#!/usr/bin/env bash
# debian11.sh <x64|arm64> <dir> <package[=version]>...: downloads Debian 11 (bullseye, glibc
# 2.31) packages of that architecture into <dir>/debs and unpacks them all into <dir>/root.
# apt-get works from a private configuration: the system's apt state is not touched.
set -euo pipefail

arch=$1 dir=$2
shift 2
case "$arch" in
  x64) deb_arch=amd64 ;;
  arm64) deb_arch=arm64 ;;
  *) echo "debian11.sh: unsupported architecture '$arch' (x64, arm64)" >&2; exit 1 ;;
esac

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dir/debs" "$dir/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" >"$state/sources.list"
apt_options=(
  -o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
  -o Dir::State::status=/dev/null -o APT::Architectures::="$deb_arch" -o APT::Sandbox::User=root -qq
)
apt-get "${apt_options[@]}" update
packages=()
for p in "$@"; do
  name=${p%%=*}
  packages+=("$name:$deb_arch${p#"$name"}")
done
(cd "$dir/debs" && apt-get "${apt_options[@]}" download "${packages[@]}")
for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
