#!/usr/bin/env bash
# Node side of the VS Code tests, on a fresh machine with node 20 + npm and no network but the npm registry:
# the extension's dependencies (TypeScript, vscode-languageclient, @vscode/vsce) and the end-to-end rig
# (code-server 4.100.3, the last release for node 20, and playwright-core; the browser is Debian's chromium).
# Debian packages it relies on (editors/setup.sh installs them): chromium, ripgrep, libkrb5-dev, plus the
# machine's gcc/g++/make/python3 for code-server's native modules. Safe to run again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
extension="$(dirname "$here")"

export npm_config_yes=true npm_config_unsafe_perm=true npm_config_fund=false npm_config_audit=false \
  npm_config_update_notifier=false PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# Native modules (kerberos, node-pty, spdlog, argon2…) compile against the installed node's own headers,
# not a header tarball from the internet.
if [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

# code-server's VS Code pins @vscode/ripgrep 1.15.11 (lib/vscode/npm-shrinkwrap.json), whose postinstall downloads
# ripgrep release v13.0.0-10 from GitHub unless the archive is already in its cache folder under os.tmpdir().
# Put Debian's rg there instead.
rg_package=1.15.11
rg_release=v13.0.0-10
case "$(uname -m)" in
  x86_64) rg_target=x86_64-unknown-linux-musl ;;
  aarch64 | arm64) rg_target=aarch64-unknown-linux-musl ;;
  *) echo "setup.sh: no ripgrep cache recipe for $(uname -m)" >&2; exit 1 ;;
esac
rg_bin="$(command -v rg || true)"
if [ -z "$rg_bin" ]; then
  echo "setup.sh: ripgrep is missing (apt-get install ripgrep, or run editors/setup.sh)" >&2
  exit 1
fi
rg_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-${rg_package}"
rg_archive="$rg_cache/ripgrep-${rg_release}-${rg_target}.tar.gz"
if [ ! -s "$rg_archive" ]; then
  staging="$(mktemp -d)"
  cp "$rg_bin" "$staging/rg"
  mkdir -p "$rg_cache"
  tar -czf "$rg_archive" -C "$staging" rg
  rm -rf "$staging"
fi

install() {
  # npm ci when the lockfile is there (exact versions), npm install otherwise.
  if [ -f package-lock.json ]; then npm ci --no-fund --no-audit; else npm install --no-fund --no-audit; fi
}

start=$SECONDS
(cd "$extension" && install)
echo "setup.sh: extension dependencies in $((SECONDS - start)) s"

start=$SECONDS
if [ ! -x "$here/node_modules/.bin/code-server" ] || [ ! -e "$here/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]; then
  (cd "$here" && install)
fi
test -e "$here/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
"$here/node_modules/.bin/code-server" --version
echo "setup.sh: code-server and playwright-core in $((SECONDS - start)) s"
