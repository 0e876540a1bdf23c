// The @grpc packages scripts/setup-interop.sh installs under the interop directory
// ($STREAMSTORM_INTEROP_DIR, default <repo>/.interop), shared by the interop programs.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const interopDir = process.env.STREAMSTORM_INTEROP_DIR || path.resolve(__dirname, '../../../.interop');

// { grpc, protoLoader }, or `fail` called with what is missing.
function loadGrpc(fail) {
  const requireInstalled = createRequire(path.join(interopDir, 'node', 'package.json'));
  try {
    return { grpc: requireInstalled('@grpc/grpc-js'), protoLoader: requireInstalled('@grpc/proto-loader') };
  } catch (err) {
    return fail(`cannot load @grpc packages from ${interopDir}/node (run scripts/setup-interop.sh): ${err.message}`);
  }
}

// The installed @grpc/grpc-js version, read from its package.json (its exports hide the file
// from require); 'unknown' if it cannot be read. Only informative.
function grpcJsVersion() {
  const manifest = path.join(interopDir, 'node', 'node_modules', '@grpc', 'grpc-js', 'package.json');
  try {
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
  } catch (err) {
    return 'unknown';
  }
}

module.exports = { loadGrpc, grpcJsVersion };
