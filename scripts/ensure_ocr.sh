#!/usr/bin/env bash
# Make sure Tesseract OCR with English, German and Simplified Chinese data is installed (scanned lab reports).
# Idempotent: does nothing when the binary and the three language packs are there.
set -euo pipefail
have_all() {
  command -v tesseract >/dev/null 2>&1 || return 1
  langs=$(tesseract --list-langs 2>/dev/null || true)
  for l in eng deu chi_sim osd; do grep -qx "$l" <<<"$langs" || return 1; done
}
if have_all; then exit 0; fi
echo "Tesseract OCR (eng, deu, chi_sim) is missing; installing it from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-chi-sim tesseract-ocr-osd >/dev/null
have_all || { echo "Tesseract installed but a language pack is missing" >&2; exit 1; }
