#!/usr/bin/env bash
# Build: generate protobuf code, compile TypeScript, copy the generated JS beside the output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/gen-proto.sh
rm -rf dist
npx tsc -p tsconfig.json
mkdir -p dist/gen
cp src/gen/proto.js dist/gen/proto.js
node scripts/bundle.mjs
