#!/usr/bin/env node
// Relay check (Node @grpc/grpc-js): K concurrent calls of each call pattern against a target
// that leads to the interop upstream (../python/upstream.py), every message checked.
// The same options and summary as ../python/relay_check.py; the upstream's answers are
// recomputed here with the rules of ../python/relay_messages.py, written again in JavaScript.
// Only harness errors exit non-zero; a wrong relay is data.
'use strict';

const crypto = require('crypto');
const path = require('path');
const { parseArgs } = require('util');

const installed = require('./installed');

const { grpc, protoLoader } = installed.loadGrpc(fail);
const { grpcJsVersion } = installed;

const PATTERNS = ['unary', 'server', 'client', 'bidi'];
const KEPT_PROBLEMS = 5;
const MESSAGES_KEY = 'x-upstream-messages';
const RECEIVED_TRAILER = 'x-upstream-received';

function fail(message) {
  process.stderr.write(`relay_check.js: ${message}\n`);
  process.exit(2);
}

// The upstream's rules (relay_messages.py).
const rules = {
  user: (userId) => ({
    user_id: userId,
    name: `user ${userId}`,
    roles: ['reader', `role-${userId.length}`],
    labels: { id: userId },
    login_count: String(userId.length * 7),
    email: `${userId}@upstream.test`,
  }),
  notification: (topics, resumeAfter, index) => {
    const sequence = resumeAfter + index + 1;
    const topic = topics[index % topics.length];
    return { topic, message: `${topic} #${sequence}`, sequence: String(sequence) };
  },
  chunkData: (call, index) => Buffer.from(`call ${call} chunk ${index};`.repeat(1 + (index % 3))),
  uploadSummary: (chunks) => {
    const data = Buffer.concat(chunks.map((chunk) => chunk.data));
    const inOrder = chunks.every((chunk, index) => chunk.sequence === index);
    const complete = inOrder && chunks.length > 0 && chunks[chunks.length - 1].is_last;
    return {
      file_id: `chunks-${chunks.length}`,
      total_size: String(data.length),
      checksum: `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`,
      // SUCCESS is the enum's zero: proto3 leaves it off the wire, so it arrives absent.
      ...(complete ? {} : { status: 'PARTIAL' }),
    };
  },
  chatReply: (index, content) => ({ user_id: 'upstream', content: `#${index + 1} ${content}`, type: 'SYSTEM' }),
};

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        calls: { type: 'string', default: '10' },
        messages: { type: 'string', default: '5' },
        patterns: { type: 'string', default: PATTERNS.join(',') },
        channels: { type: 'string', default: '1' },
        timeout: { type: 'string', default: '30' },
        metadata: { type: 'string', multiple: true, default: [] },
        'proto-root': { type: 'string', default: path.resolve(__dirname, '../../../protos') },
      },
    }));
  } catch (err) {
    fail(err.message);
  }
  if (!values.target) fail('--target is required');
  const opts = {
    target: values.target,
    calls: Number(values.calls),
    messages: Number(values.messages),
    patterns: values.patterns.split(','),
    channels: Number(values.channels),
    timeoutS: Number(values.timeout),
    metadata: values.metadata.map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) fail(`--metadata expects KEY=VALUE, got ${JSON.stringify(pair)}`);
      return [pair.slice(0, eq).toLowerCase(), pair.slice(eq + 1)];
    }),
    protoRoot: values['proto-root'],
  };
  const counts = [opts.calls, opts.messages, opts.channels];
  if (counts.some((count) => !Number.isInteger(count) || count < 1)) fail('counts must be integers >= 1');
  if (opts.patterns.some((pattern) => !PATTERNS.includes(pattern))) fail(`bad --patterns ${values.patterns}`);
  return opts;
}

function loadMethods(protoRoot) {
  const files = ['myapp/user.proto', 'myapp/notification.proto', 'myapp/upload.proto', 'myapp/chat.proto'];
  const definition = protoLoader.loadSync(files, {
    keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [protoRoot],
  });
  return {
    unary: definition['myapp.UserService'].GetUser,
    server: definition['myapp.NotificationService'].Subscribe,
    client: definition['myapp.UploadService'].UploadFile,
    bidi: definition['myapp.ChatService'].Chat,
  };
}

// A message as the library renders it once received (through its own serializer), to compare
// with what arrived.
function rendered(method, values) {
  return canonical(method.responseDeserialize(method.responseSerialize(values)));
}

function canonical(message) {
  return JSON.stringify(message, function buffersAsBase64(key, value) {
    return Buffer.isBuffer(this[key]) ? this[key].toString('base64') : value;
  });
}

// One call's findings.
class Check {
  constructor(call, method) {
    this.call = call;
    this.method = method;
    this.received = 0;
    this.problems = [];
  }

  expect(what, got, wanted) {
    if (got !== wanted) {
      this.problems.push(`call ${this.call}: ${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(wanted)}`);
    }
  }

  response(index, got, wanted) {
    this.received += 1;
    this.expect(`response ${index}`, canonical(got), rendered(this.method, wanted));
  }

  // Checks the status and the echoed metadata; returns the code's name.
  finish(headers, status, requests) {
    const code = grpc.status[status.code];
    this.expect('status', `${code} ${status.details || ''}`.trim(), 'OK');
    this.expect('echoed header', headers.get('x-echo-call')[0], String(this.call));
    this.expect('echoed trailer', status.metadata.get('x-trailer-echo-call')[0], String(this.call));
    this.expect('requests the upstream received', status.metadata.get(RECEIVED_TRAILER)[0], String(requests));
    return code;
  }
}

// Starts one call of `pattern`; resolves with [check, code] once its status is in and every
// response has been read.
function runOne(pattern, client, methods, opts, call) {
  const method = methods[pattern];
  const check = new Check(call, method);
  const metadata = new grpc.Metadata();
  for (const [key, value] of [['x-echo-call', String(call)], ['x-trailer-echo-call', String(call)],
    [MESSAGES_KEY, String(opts.messages)], ...opts.metadata]) metadata.add(key, value);
  const options = { deadline: Date.now() + opts.timeoutS * 1000 };
  const args = [method.path, method.requestSerialize, method.responseDeserialize];
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    let pending = method.responseStream ? 2 : 1;
    let status;
    let requests = 1;
    const settle = () => {
      pending -= 1;
      if (pending > 0) return;
      const code = check.finish(headers, status, requests);
      if (code !== 'OK') check.problems.push(`call ${call}: ended ${code}: ${status.details}`);
      resolve([check, code]);
    };
    let stream;
    if (pattern === 'unary') {
      const userId = `u${call}`;
      stream = client.makeUnaryRequest(...args, { user_id: userId }, metadata, options, (err, reply) => {
        if (!err) check.response(0, reply, rules.user(userId));
      });
    } else if (pattern === 'server') {
      const topics = [`t${call}`, 'shared'];
      const resumeAfter = call * 1000;
      stream = client.makeServerStreamRequest(...args, { topics, resume_after: resumeAfter }, metadata, options);
      let index = 0;
      stream.on('data', (notification) => {
        check.response(index, notification, rules.notification(topics, resumeAfter, index));
        index += 1;
      });
      stream.on('end', () => {
        check.expect('responses', index, opts.messages);
        settle();
      });
    } else if (pattern === 'client') {
      const chunks = Array.from({ length: opts.messages }, (_, i) => ({
        data: rules.chunkData(call, i), sequence: i, is_last: i === opts.messages - 1,
      }));
      requests = chunks.length;
      stream = client.makeClientStreamRequest(...args, metadata, options, (err, reply) => {
        if (!err) check.response(0, reply, rules.uploadSummary(chunks));
      });
      chunks.forEach((chunk) => stream.write(chunk));
      stream.end();
    } else {
      stream = pingPong(client, args, metadata, options, check, opts, settle);
      requests = opts.messages;
    }
    if (method.responseStream) stream.on('error', () => {}); // the status event has it
    stream.on('metadata', (md) => { headers = md; });
    stream.on('status', (s) => {
      status = s;
      settle();
    });
  });
}

// Bidi as ping-pong: each message is answered before the next is sent, so a relay holding
// messages back (until the half-close, say) runs into the deadline.
function pingPong(client, args, metadata, options, check, opts, settle) {
  const stream = client.makeBidiStreamRequest(...args, metadata, options);
  let index = 0;
  const send = () => stream.write({ user_id: `u${check.call}`, content: `c${check.call}-${index}` });
  stream.on('data', (reply) => {
    check.response(index, reply, rules.chatReply(index, `c${check.call}-${index}`));
    index += 1;
    if (index < opts.messages) send();
    else stream.end();
  });
  stream.on('end', () => {
    check.expect('responses', index, opts.messages);
    settle();
  });
  send();
  return stream;
}

async function runPattern(pattern, clients, methods, opts) {
  const calls = Array.from({ length: opts.calls }, (_, call) =>
    runOne(pattern, clients[call % clients.length], methods, opts, call));
  const results = await Promise.all(calls);
  const codes = {};
  for (const [, code] of results) codes[code] = (codes[code] || 0) + 1;
  return {
    calls: opts.calls,
    ok: results.filter(([check]) => check.problems.length === 0).length,
    messages: results.reduce((sum, [check]) => sum + check.received, 0),
    codes,
    problems: results.flatMap(([check]) => check.problems).slice(0, KEPT_PROBLEMS),
  };
}

async function main() {
  const opts = parseCli();
  const methods = loadMethods(opts.protoRoot);
  // Each client a connection of its own, so --channels spreads the calls over connections.
  const clients = Array.from({ length: opts.channels }, () =>
    new grpc.Client(opts.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const reports = await Promise.all(opts.patterns.map((pattern) => runPattern(pattern, clients, methods, opts)));
  const summary = { library: `grpc-js ${grpcJsVersion()}`, target: opts.target, patterns: {} };
  opts.patterns.forEach((pattern, index) => { summary.patterns[pattern] = reports[index]; });
  clients.forEach((client) => client.close());
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(0));
}

main().catch((err) => fail(err.stack || String(err)));
