#!/usr/bin/env bash
# Installs the servers that `npm run test:e2e` starts: Dovecot (IMAP, POP3, LMTP, auth),
# Postfix and tinyproxy (the corporate proxy stand-in), from Debian packages. Idempotent: does nothing when they are already there.
# Needs root and apt-get; fails loudly otherwise, because an e2e run without them tests nothing.
set -euo pipefail

packages=(dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix tinyproxy)

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then missing+=("$p"); fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "e2e-deps: ${packages[*]} already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e-deps: missing ${missing[*]}; installing them needs root (run as root or with sudo)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "e2e-deps: missing ${missing[*]} and apt-get is not available" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it is to be used; the suite writes its own config, so: none.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
echo "e2e-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "e2e-deps: installed ${missing[*]}"
