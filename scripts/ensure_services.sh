#!/usr/bin/env bash
# Make sure what the tests need is there: Tesseract (OCR), Chromium with a CJK font (portal browser tests), and
# the PostgreSQL server (127.0.0.1:5432, trust auth, database `test`) running. Idempotent.
set -euo pipefail
bash "$(dirname "$0")/ensure_ocr.sh"
# the portal's browser tests drive Debian's Chromium through Playwright (its own browser download is unreachable)
# (and a CJK font, so the Chinese pages render and their screenshots are readable)
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then
  echo "Chromium or a CJK font is missing; installing them from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if pg_up; then exit 0; fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not installed; installing it from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
# a fresh install has no trust auth or `test` database: make both exist
psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 || {
  su postgres -c "psql -c \"ALTER USER postgres PASSWORD NULL\"" >/dev/null 2>&1 || true
  su postgres -c "createdb test" >/dev/null 2>&1 || true
}
