#!/usr/bin/env node
// Generic gRPC client (Node @grpc/grpc-js) for the streamstorm interop tests.
// Same CLI and output JSON as ../python/client.py (channel options are grpc-js's own);
// a non-OK status is data (exit 0), only harness errors exit non-zero.
'use strict';

const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');

const { grpc, protoLoader } = require('./installed').loadGrpc(fail);

const USAGE = `usage: client.js --target HOST:PORT --proto-root DIR [--proto FILE ...] --method package.Service/Method
                 [--requests JSON_ARRAY] [--metadata KEY=VALUE ...] [--timeout SECONDS]
                 [--send-interval-ms N] [--cancel-after N]
                 [--channel-option KEY=VALUE ...] [--call-starts-ms MS[,MS...]] [--warm-up]

  --target HOST:PORT       server address, e.g. 127.0.0.1:50051
  --proto-root DIR         import root of the .proto files (repeatable)
  --proto FILE             .proto file to load, relative to a root (repeatable;
                           default: every .proto under the roots)
  --method NAME            full method name: package.Service/Method
  --requests JSON_ARRAY    request messages as proto-loader objects (default [{}]);
                           bytes as base64, Timestamp/Duration as {seconds, nanos}
  --metadata KEY=VALUE     request metadata (repeatable); values of -bin keys are base64
  --timeout SECONDS        deadline
  --send-interval-ms N     pause between streamed requests
  --cancel-after N         cancel the call after receiving N responses
  --channel-option K=V     grpc-js channel option, e.g. grpc.keepalive_time_ms=1000
                           (repeatable; integer values are passed as numbers)
  --call-starts-ms LIST    connect, then make one call per entry on the same channel,
                           each started this many ms after the first; prints {"calls": [...]}
  --channel-per-call       with --call-starts-ms: each call on a channel (and connection) of its own
  --warm-up                with --call-starts-ms: before the timed calls, a unary and a
                           server-streaming call to a method no server has (answered
                           UNIMPLEMENTED), and the method's codecs run once, so the timed
                           calls do not pay grpc-js's first-call costs

Prints one JSON object: responses, code, details, initial_metadata,
trailing_metadata, received_at_ms, sent_at_ms, ended_at_ms (with
--call-starts-ms, one such object per call, each with started_at_ms).`;

function fail(message) {
  process.stderr.write(`client.js: ${message}\n`);
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        target: { type: 'string' },
        'proto-root': { type: 'string', multiple: true, default: [] },
        proto: { type: 'string', multiple: true, default: [] },
        method: { type: 'string' },
        requests: { type: 'string', default: '[{}]' },
        metadata: { type: 'string', multiple: true, default: [] },
        timeout: { type: 'string' },
        'send-interval-ms': { type: 'string', default: '0' },
        'cancel-after': { type: 'string' },
        'channel-option': { type: 'string', multiple: true, default: [] },
        'call-starts-ms': { type: 'string' },
        'channel-per-call': { type: 'boolean', default: false },
        'warm-up': { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(`${err.message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  for (const name of ['target', 'method']) {
    if (!values[name]) fail(`--${name} is required\n${USAGE}`);
  }
  if (values['proto-root'].length === 0) fail(`--proto-root is required\n${USAGE}`);
  for (const root of values['proto-root']) {
    if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) fail(`proto root ${root} is not a directory`);
  }
  const cancelAfter = values['cancel-after'] === undefined ? undefined : Number(values['cancel-after']);
  if (cancelAfter !== undefined && !(Number.isInteger(cancelAfter) && cancelAfter >= 1)) {
    fail('--cancel-after must be an integer >= 1');
  }
  let requests;
  try {
    requests = JSON.parse(values.requests);
  } catch (err) {
    fail(`--requests is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(requests)) fail('--requests must be a JSON array');
  const channelOptions = {};
  for (const option of values['channel-option']) {
    const eq = option.indexOf('=');
    if (eq < 0) fail(`--channel-option expects KEY=VALUE, got ${JSON.stringify(option)}`);
    const value = option.slice(eq + 1);
    channelOptions[option.slice(0, eq)] = /^-?\d+$/.test(value) ? Number(value) : value;
  }
  let callStarts;
  if (values['call-starts-ms'] !== undefined) {
    callStarts = values['call-starts-ms'].split(',').map(Number);
    if (callStarts.some((ms) => !Number.isFinite(ms) || ms < 0)) {
      fail(`--call-starts-ms expects comma-separated numbers, got ${JSON.stringify(values['call-starts-ms'])}`);
    }
  }
  return {
    target: values.target,
    roots: values['proto-root'],
    protos: values.proto,
    method: values.method,
    requests,
    metadata: values.metadata,
    timeout: values.timeout === undefined ? undefined : Number(values.timeout),
    sendIntervalMs: Number(values['send-interval-ms']),
    cancelAfter,
    channelOptions,
    callStarts,
    channelPerCall: values['channel-per-call'],
    warmUp: values['warm-up'],
  };
}

function findProtos(roots) {
  return roots.flatMap((root) =>
    fs.readdirSync(root, { recursive: true })
      .filter((file) => file.endsWith('.proto'))
      .sort());
}

function buildMetadata(pairs) {
  const metadata = new grpc.Metadata();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) fail(`--metadata expects KEY=VALUE, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq).toLowerCase();
    const value = pair.slice(eq + 1);
    metadata.add(key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value);
  }
  return metadata;
}

function metadataToJson(metadata) {
  const out = {};
  for (const [key, values] of Object.entries(metadata ? metadata.toJSON() : {})) {
    out[key] = values.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)).join(', ');
  }
  return out;
}

// JSON.stringify replacer: `this[key]` is the value before Buffer#toJSON ran.
function buffersAsBase64(key, value) {
  return Buffer.isBuffer(this[key]) ? this[key].toString('base64') : value;
}

function main() {
  const opts = parseCli();
  const packageDefinition = protoLoader.loadSync(opts.protos.length ? opts.protos : findProtos(opts.roots), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: opts.roots,
  });
  const [serviceName, methodName] = opts.method.split('/');
  const method = packageDefinition[serviceName] && packageDefinition[serviceName][methodName];
  if (!method || !method.path) fail(`method ${JSON.stringify(opts.method)} not found in the loaded protos`);
  if (!method.requestStream && opts.requests.length !== 1) {
    fail(`${opts.method} is not client-streaming; pass exactly one request`);
  }

  const open = (options) => new grpc.Client(opts.target, grpc.credentials.createInsecure(), options);
  const client = open(opts.channelOptions);
  // With --channel-per-call, each call gets a client (channel) of its own, and its own
  // subchannel pool so grpc-js does not share one connection between them.
  const clients = opts.channelPerCall
    ? opts.callStarts.map(() => open({ ...opts.channelOptions, 'grpc.use_local_subchannel_pool': 1 }))
    : [];
  const clientFor = (index) => (opts.channelPerCall ? clients[index] : client);
  const finish = (output) => {
    client.close();
    clients.forEach((each) => each.close());
    process.stdout.write(`${JSON.stringify(output, buffersAsBase64)}\n`, () => process.exit(0));
  };
  if (opts.callStarts === undefined) {
    makeCall(client, method, opts, finish);
    return;
  }
  // Several calls, each started at its offset. Connected first, so the offsets are between
  // calls on live connections.
  const deadline = Date.now() + 10000;
  Promise.all([client, ...clients].map((each) => new Promise((resolve, reject) => {
    each.waitForReady(deadline, (err) => (err ? reject(err) : resolve()));
  }))).catch((err) => fail(`could not connect to ${opts.target}: ${err.message}`))
    .then(() => (opts.warmUp ? warmUp([client, ...clients], method, opts.requests) : undefined))
    .then(() => startCalls(opts, method, clientFor, finish));
}

// Makes one call per --call-starts-ms entry, each this many ms after the first.
function startCalls(opts, method, clientFor, finish) {
  const origin = performance.now();
  const calls = new Array(opts.callStarts.length);
  let pending = calls.length;
  opts.callStarts.forEach((ms, index) => {
    setTimeout(() => {
      const startedAtMs = Math.round((performance.now() - origin) * 1000) / 1000;
      makeCall(clientFor(index), method, opts, (result) => {
        calls[index] = { started_at_ms: startedAtMs, ...result };
        pending -= 1;
        if (pending === 0) finish({ calls });
      });
    }, ms);
  });
}

// grpc-js's first call on a channel, and the first use of a message type, cost several ms
// (and vary by as much from one process to the next): pays them before the timed calls with
// calls to a method no server has, and one round of the method's codecs.
async function warmUp(channels, method, requests) {
  requests.forEach((request) => method.requestDeserialize(method.requestSerialize(request)));
  method.responseDeserialize(method.responseSerialize({}));
  const same = (bytes) => bytes;
  const path = '/streamstorm.interop.WarmUp/Call';
  for (const each of channels) {
    await new Promise((resolve) => {
      each.makeUnaryRequest(path, same, same, Buffer.alloc(0), new grpc.Metadata(), {}, () => resolve());
    });
    await new Promise((resolve) => {
      each.makeServerStreamRequest(path, same, same, Buffer.alloc(0), new grpc.Metadata(), {})
        .on('error', () => {})
        .on('status', () => resolve());
    });
  }
}

// Makes one call and hands its report to `done` once the status is in and, for response
// streams, every message has been emitted.
function makeCall(client, method, opts, done) {
  const metadata = buildMetadata(opts.metadata);
  const callOptions = opts.timeout === undefined ? {} : { deadline: Date.now() + opts.timeout * 1000 };
  const args = [method.path, method.requestSerialize, method.responseDeserialize];

  const start = performance.now();
  const elapsedMs = () => Math.round((performance.now() - start) * 1000) / 1000;
  const result = {
    responses: [],
    code: null,
    details: '',
    initial_metadata: {},
    trailing_metadata: {},
    received_at_ms: [],
    sent_at_ms: [],
    ended_at_ms: null,
  };
  let finished = false;
  let call;
  const onResponse = (response) => {
    result.responses.push(response);
    result.received_at_ms.push(elapsedMs());
    if (opts.cancelAfter !== undefined && result.responses.length >= opts.cancelAfter) call.cancel();
  };
  const unaryCallback = (err, response) => {
    if (!err) onResponse(response);
  };

  if (!method.requestStream) result.sent_at_ms.push(elapsedMs());
  if (method.requestStream && method.responseStream) {
    call = client.makeBidiStreamRequest(...args, metadata, callOptions);
  } else if (method.requestStream) {
    call = client.makeClientStreamRequest(...args, metadata, callOptions, unaryCallback);
  } else if (method.responseStream) {
    call = client.makeServerStreamRequest(...args, opts.requests[0], metadata, callOptions);
  } else {
    call = client.makeUnaryRequest(...args, opts.requests[0], metadata, callOptions, unaryCallback);
  }
  let pendingEvents = method.responseStream ? 2 : 1;
  const settle = () => {
    pendingEvents -= 1;
    if (pendingEvents === 0) done(result);
  };
  if (method.responseStream) {
    call.on('data', onResponse);
    call.on('error', () => {}); // the status event carries the error
    call.on('end', settle);
  }
  call.on('metadata', (md) => {
    result.initial_metadata = metadataToJson(md);
  });
  call.on('status', (status) => {
    finished = true;
    result.ended_at_ms = elapsedMs();
    result.code = grpc.status[status.code];
    result.details = status.details || '';
    result.trailing_metadata = metadataToJson(status.metadata);
    settle();
  });

  if (method.requestStream) {
    (async () => {
      for (const [i, request] of opts.requests.entries()) {
        if (i > 0 && opts.sendIntervalMs > 0) {
          await new Promise((resolve) => setTimeout(resolve, opts.sendIntervalMs));
        }
        if (finished) return;
        result.sent_at_ms.push(elapsedMs());
        call.write(request);
      }
      call.end();
    })();
  }
}

main();
