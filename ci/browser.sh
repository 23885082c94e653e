#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser test, when missing. Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "browser: chromium and chromedriver present"
  exit 0
fi
echo "browser: installing chromium and chromium-driver"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
chromium --version 2>/dev/null | grep -v unexpected || true
