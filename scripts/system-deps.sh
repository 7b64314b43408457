#!/usr/bin/env bash
# System programs some features need: Graphviz (flows graph --format svg|png) and Debian's
# Chromium (the browser tests). Installed with apt when missing and we may; otherwise we say
# what is missing and the features (and their tests) report it clearly.
set -u
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >/tmp/ductwork-apt.log 2>&1 || {
    apt-get update -q >>/tmp/ductwork-apt.log 2>&1 && apt-get install -y -q "${need[@]}" >>/tmp/ductwork-apt.log 2>&1
  } || { echo "apt-get install ${need[*]} failed; see /tmp/ductwork-apt.log" >&2; exit 1; }
else
  echo "note: missing system packages: ${need[*]} (install them to enable graph pictures and browser tests)" >&2
fi
