#!/usr/bin/env node
// Reconnecting subscriber (Node @grpc/grpc-js) for the streamstorm client-judge tests.
// Same CLI and output as ../python/subscriber.py: it subscribes, reads until the stream ends,
// classifies the ending, waits as its retry policy says, subscribes again, until --duration-s
// has passed (or SIGTERM/SIGINT). A stream that ends, OK or with any status, is one attempt; a
// stream that delivered messages resets the backoff. gRPC statuses are data; only harness
// errors exit non-zero. At exit it prints one JSON line (attempts and when each started, Unix
// ms; messages, endings by code, the sequences it resumed from, the delays it slept and beside
// each the RetryInfo delay the call before it carried, or null).
// Calls wait for the channel to be ready, as long-lived subscriptions in applications do;
// --fail-fast turns that off.
'use strict';

const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');

const installed = require('./installed');

const { grpc, protoLoader } = installed.loadGrpc(fail);
const { grpcJsVersion } = installed;

const USAGE = `usage: subscriber.js --target HOST:PORT --method package.Service/Method --duration-s N --client-id ID
         [--proto-root DIR] [--request JSON]
         [--retry exponential --initial-ms 100 --multiplier 2 --jitter 0.2 --max-ms 2000 | --retry fixed --interval-ms 20]
         [--honor-retry-info] [--resume] [--resume-field resume_after] [--sequence-field sequence]
         [--keepalive-time-ms T --keepalive-timeout-ms U] [--deadline-s S] [--fail-fast]`;

function fail(message) {
  process.stderr.write(`subscriber.js: ${message}\n`);
  process.exit(2);
}

function parseCli() {
  const number = (value, name, min = 0) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min) fail(`--${name} must be a number >= ${min}`);
    return parsed;
  };
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        method: { type: 'string' },
        'duration-s': { type: 'string' },
        'client-id': { type: 'string' },
        'proto-root': { type: 'string', default: path.resolve(__dirname, '../../../protos') },
        request: { type: 'string', default: '{"topics": ["orders"]}' },
        retry: { type: 'string', default: 'exponential' },
        'initial-ms': { type: 'string', default: '100' },
        multiplier: { type: 'string', default: '2' },
        jitter: { type: 'string', default: '0.2' },
        'max-ms': { type: 'string', default: '2000' },
        'interval-ms': { type: 'string', default: '20' },
        'honor-retry-info': { type: 'boolean', default: false },
        resume: { type: 'boolean', default: false },
        'resume-field': { type: 'string', default: 'resume_after' },
        'sequence-field': { type: 'string', default: 'sequence' },
        'keepalive-time-ms': { type: 'string' },
        'keepalive-timeout-ms': { type: 'string' },
        'deadline-s': { type: 'string' },
        'fail-fast': { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(`${err.message}\n${USAGE}`);
  }
  for (const name of ['target', 'method', 'duration-s', 'client-id']) {
    if (values[name] === undefined) fail(`--${name} is required\n${USAGE}`);
  }
  if (!['exponential', 'fixed'].includes(values.retry)) fail('--retry is exponential or fixed');
  if ((values['keepalive-time-ms'] === undefined) !== (values['keepalive-timeout-ms'] === undefined)) {
    fail('--keepalive-time-ms and --keepalive-timeout-ms go together');
  }
  let request;
  try {
    request = JSON.parse(values.request);
  } catch (err) {
    fail(`--request is not valid JSON: ${err.message}`);
  }
  const jitter = number(values.jitter, 'jitter');
  if (jitter >= 1) fail('--jitter must be below 1');
  return {
    target: values.target,
    method: values.method,
    durationS: number(values['duration-s'], 'duration-s'),
    clientId: values['client-id'],
    protoRoot: values['proto-root'],
    request,
    retry: values.retry,
    initialMs: number(values['initial-ms'], 'initial-ms'),
    multiplier: number(values.multiplier, 'multiplier'),
    jitter,
    maxMs: number(values['max-ms'], 'max-ms'),
    intervalMs: number(values['interval-ms'], 'interval-ms'),
    honorRetryInfo: values['honor-retry-info'],
    resume: values.resume,
    resumeField: values['resume-field'],
    sequenceField: values['sequence-field'],
    keepalive: values['keepalive-time-ms'] === undefined ? undefined : {
      timeMs: number(values['keepalive-time-ms'], 'keepalive-time-ms', 1),
      timeoutMs: number(values['keepalive-timeout-ms'], 'keepalive-timeout-ms', 1),
    },
    deadlineS: values['deadline-s'] === undefined ? undefined : number(values['deadline-s'], 'deadline-s'),
    failFast: values['fail-fast'],
  };
}

// The delay before the next attempt under the chosen policy.
class Backoff {
  constructor(opts) {
    this.opts = opts;
    this.failures = 0;
  }

  reset() {
    this.failures = 0;
  }

  nextMs() {
    const o = this.opts;
    if (o.retry === 'fixed') return o.intervalMs;
    const base = Math.min(o.initialMs * o.multiplier ** this.failures, o.maxMs);
    this.failures += 1;
    return base * (1 + (Math.random() * 2 - 1) * o.jitter);
  }
}

// A minimal protobuf reader, enough for google.rpc.Status → Any → google.rpc.RetryInfo →
// google.protobuf.Duration: fields as [number, value], varints as Numbers, length-delimited
// fields as Buffers.
function protoFields(buffer) {
  const fields = [];
  let at = 0;
  const varint = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (at >= buffer.length) throw new Error('truncated varint');
      const byte = buffer[at++];
      value += (byte & 0x7f) * scale;
      scale *= 128;
      if (byte < 0x80) return value;
    }
  };
  while (at < buffer.length) {
    const key = varint();
    const wire = key % 8;
    const field = Math.floor(key / 8);
    if (wire === 0) fields.push([field, varint()]);
    else if (wire === 2) {
      const length = varint();
      fields.push([field, buffer.subarray(at, at + length)]);
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

// The last value of each field of a message (or of an absent one: none).
function fieldsOf(buffer) {
  return Object.fromEntries(protoFields(buffer || Buffer.alloc(0)));
}

// The RetryInfo delay in a status's grpc-status-details-bin trailer, in ms, or undefined.
function retryInfoMs(metadata) {
  const [details] = metadata ? metadata.get('grpc-status-details-bin') : [];
  if (!Buffer.isBuffer(details)) return undefined;
  try {
    for (const [field, any] of protoFields(details)) {
      if (field !== 3) continue; // Status: 3 details (repeated Any)
      const typed = fieldsOf(any); // Any: 1 type_url, 2 value
      if (!String(typed[1] || '').endsWith('/google.rpc.RetryInfo')) continue;
      const delay = fieldsOf(fieldsOf(typed[2])[1]); // RetryInfo: 1 retry_delay (Duration)
      return (delay[1] || 0) * 1000 + (delay[2] || 0) / 1e6; // Duration: 1 seconds, 2 nanos
    }
  } catch (err) {
    return undefined;
  }
  return undefined;
}

function main() {
  const opts = parseCli();
  const definition = protoLoader.loadSync(
    fs.readdirSync(opts.protoRoot, { recursive: true }).filter((file) => file.endsWith('.proto')),
    { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [opts.protoRoot] },
  );
  const [serviceName, methodName] = opts.method.split('/');
  const method = definition[serviceName] && definition[serviceName][methodName];
  if (!method || !method.path) fail(`method ${JSON.stringify(opts.method)} not found under ${opts.protoRoot}`);
  if (method.requestStream || !method.responseStream) fail(`${opts.method} is not a server-streaming method`);

  const channelOptions = opts.keepalive === undefined ? {} : {
    'grpc.keepalive_time_ms': opts.keepalive.timeMs,
    'grpc.keepalive_timeout_ms': opts.keepalive.timeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
  };
  const client = new grpc.Client(opts.target, grpc.credentials.createInsecure(), channelOptions);
  const report = {
    client_id: opts.clientId,
    library: `grpc-js ${grpcJsVersion()}`,
    attempts: 0,
    messages: 0,
    endings: {},
    resumed_from: [],
    delays_ms: [],
    retry_info_ms: [],
    attempt_times_unix_ms: [],
  };

  let stopped = false;
  let current;
  let wake;
  const stop = () => {
    stopped = true;
    if (current) current.cancel();
    if (wake) wake();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const timer = setTimeout(stop, opts.durationS * 1000);
  const started = performance.now();

  // One subscription, to its end: how many messages it delivered and its status.
  const subscribeOnce = (request) => new Promise((resolve) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-client-id', opts.clientId);
    const callOptions = { waitForReady: !opts.failFast };
    if (opts.deadlineS !== undefined) callOptions.deadline = Date.now() + opts.deadlineS * 1000;
    const call = client.makeServerStreamRequest(
      method.path, method.requestSerialize, method.responseDeserialize, request, metadata, callOptions,
    );
    current = call;
    let received = 0;
    let lastSequence;
    call.on('data', (message) => {
      received += 1;
      lastSequence = Number(message[opts.sequenceField] || 0);
    });
    call.on('error', () => {}); // the status event carries it
    call.on('status', (status) => {
      current = undefined;
      resolve({ received, lastSequence, code: grpc.status[status.code], metadata: status.metadata });
    });
  });

  const backoff = new Backoff(opts);
  let lastSequence = 0;
  (async () => {
    while (!stopped) {
      const request = { ...opts.request };
      const resumeFrom = opts.resume ? lastSequence : 0;
      if (opts.resume) request[opts.resumeField] = String(resumeFrom);
      report.resumed_from.push(resumeFrom);
      report.attempts += 1;
      report.attempt_times_unix_ms.push(Date.now());
      const outcome = await subscribeOnce(request);
      report.messages += outcome.received;
      if (outcome.lastSequence !== undefined) lastSequence = outcome.lastSequence;
      // Our own cancel at the end of the run is not an ending the server caused.
      const code = stopped && outcome.code === 'CANCELLED' ? 'STOPPED' : outcome.code;
      report.endings[code] = (report.endings[code] || 0) + 1;
      if (stopped) break;
      if (outcome.received > 0) backoff.reset();
      let delay = backoff.nextMs();
      const hint = outcome.code === 'OK' ? undefined : retryInfoMs(outcome.metadata);
      report.retry_info_ms.push(hint === undefined ? null : Math.round(hint * 1000) / 1000);
      if (hint !== undefined && opts.honorRetryInfo) delay = Math.max(delay, hint);
      report.delays_ms.push(Math.round(delay * 1000) / 1000);
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, delay);
      });
      wake = undefined;
    }
    clearTimeout(timer);
    report.duration_s = Math.round(performance.now() - started) / 1000;
    client.close();
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
  })();
}

main();
