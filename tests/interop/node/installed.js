// The @grpc packages scripts/setup-interop.sh installs under the interop directory
// ($STREAMSTORM_INTEROP_DIR, default <repo>/.interop), shared by the interop programs.
'use strict';

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

module.exports = { loadGrpc };
