#!/usr/bin/env bash
# Installs the Debian packages the project needs (nothing when they are all present) and keeps vpcd out of
# the host's pcscd.
set -euo pipefail
packages=(softhsm2 opensc pcscd libccid pcsc-tools vsmartcard-vpcd umockdev libumockdev0 wrk
  # The web console's browser tests: Chromium and its WebDriver, driven by Selenium.
  chromium chromium-driver
  podman podman-docker buildah containerd runc containernetworking-plugins debootstrap iptables ipset iproute2 util-linux
  # What ./pants needs to build the CPython that runs Pants (the headers of the modules it imports).
  build-essential libssl-dev zlib1g-dev libffi-dev libsqlite3-dev libbz2-dev liblzma-dev xz-utils curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# vsmartcard-vpcd registers its reader with every pcscd on the machine, and each one then listens on
# 0.0.0.0:35963. The emulated-card tests give vpcd only to the pcscd in their own network namespace
# (devcluster.schsm.sandbox), so the host-wide entry goes (dpkg leaves a removed conffile removed).
if [ -e /etc/reader.conf.d/vpcd ]; then
  "${sudo_cmd[@]}" rm -f /etc/reader.conf.d/vpcd
fi
