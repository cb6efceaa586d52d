#!/usr/bin/env bash
# Generates static protobufjs code from proto/ into src/gen/. Never edit src/gen by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p src/gen
files=$(find proto -name '*.proto' | sort)
npx pbjs -t static-module -w esm --dependency protobufjs/minimal.js --no-beautify \
  --no-verify --no-convert --no-delimited --no-typeurl -o src/gen/proto.js $files
npx pbts -o src/gen/proto.d.ts src/gen/proto.js
