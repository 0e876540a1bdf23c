"""Reconnecting subscriber (Python grpcio) for the streamstorm client-judge tests.

Behaves like an application holding a server-streaming subscription: it subscribes, reads until
the stream ends, classifies the ending, waits as its retry policy says, subscribes again, and so
on until --duration-s has passed (or SIGTERM/SIGINT arrives). A stream that ends, OK or with any
status, is one attempt; a stream that delivered messages resets the backoff. gRPC statuses are
data; only harness errors (bad arguments, unknown method) exit non-zero.

At exit it prints one JSON line: attempts (and when each started, Unix ms), messages, endings by
status code, the sequence each attempt resumed from, the delays it slept, and beside each delay
the RetryInfo delay the call before it carried (null if none), so a test can cross-check what
the server saw.

Calls wait for the channel to be ready (`wait_for_ready`), as long-lived subscriptions in real
applications do: without it, grpcio fails a call at once with UNAVAILABLE, without reaching
the server, while its channel reconnects after a connection-level cut, and the server would see
none of those attempts. --fail-fast turns it off.
"""
import argparse
import importlib
import json
import os
import pathlib
import random
import signal
import sys
import threading
import time

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DEFAULT_GEN_DIR = pathlib.Path(
    os.environ.get("STREAMSTORM_INTEROP_DIR", pathlib.Path(__file__).resolve().parents[3] / ".interop")
) / "python-gen"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--method", required=True, help="server-streaming method: package.Service/Method")
    p.add_argument("--duration-s", type=float, required=True, help="how long to keep subscribing")
    p.add_argument("--client-id", required=True, help="sent as metadata x-client-id")
    p.add_argument("--proto-root", type=pathlib.Path, default=DEFAULT_GEN_DIR,
                   help=f"directory of generated *_pb2.py modules (default {DEFAULT_GEN_DIR})")
    p.add_argument("--request", default='{"topics": ["orders"]}',
                   help="the subscription request, proto3 JSON")
    p.add_argument("--retry", choices=["exponential", "fixed"], default="exponential")
    p.add_argument("--initial-ms", type=float, default=100.0, help="exponential: first delay")
    p.add_argument("--multiplier", type=float, default=2.0, help="exponential: growth per failed attempt")
    p.add_argument("--jitter", type=float, default=0.2, help="exponential: +/- this share, uniform")
    p.add_argument("--max-ms", type=float, default=2000.0, help="exponential: cap")
    p.add_argument("--interval-ms", type=float, default=20.0, help="fixed: the delay between attempts")
    p.add_argument("--honor-retry-info", action="store_true",
                   help="wait at least the google.rpc.RetryInfo delay a failed call carries")
    p.add_argument("--resume", action="store_true",
                   help="send the last sequence received in the request's resume field (else 0)")
    p.add_argument("--resume-field", default="resume_after", help="request field to resume with")
    p.add_argument("--sequence-field", default="sequence", help="response field holding the position")
    p.add_argument("--keepalive-time-ms", type=int, help="HTTP/2 keepalive ping interval (none by default)")
    p.add_argument("--keepalive-timeout-ms", type=int, help="how long to wait for a ping's ack")
    p.add_argument("--deadline-s", type=float, help="per-call deadline (none by default)")
    p.add_argument("--fail-fast", action="store_true",
                   help="do not wait for the channel to be ready (grpcio's default)")
    args = p.parse_args()
    if (args.keepalive_time_ms is None) != (args.keepalive_timeout_ms is None):
        p.error("--keepalive-time-ms and --keepalive-timeout-ms go together")
    if args.duration_s <= 0 or args.initial_ms < 0 or args.interval_ms < 0 or not 0 <= args.jitter < 1:
        p.error("durations must be positive and --jitter in [0, 1)")
    return args


class Backoff:
    """The delay before the next attempt under the chosen policy."""

    def __init__(self, args):
        self.args = args
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_s(self) -> float:
        a = self.args
        if a.retry == "fixed":
            return a.interval_ms / 1000
        base = min(a.initial_ms * a.multiplier ** self.failures, a.max_ms)
        self.failures += 1
        return base * (1 + random.uniform(-a.jitter, a.jitter)) / 1000


def retry_info_s(call):
    """The RetryInfo delay in the call's grpc-status-details-bin trailer, in seconds, if any."""
    try:
        status = rpc_status.from_call(call)
    except (ValueError, grpc.RpcError):
        return None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def load_method(root: pathlib.Path, name: str):
    if not root.is_dir():
        sys.exit(f"subscriber.py: proto root {root} is not a directory (run scripts/setup-interop.sh)")
    sys.path.append(str(root.resolve()))
    for module in sorted(root.rglob("*_pb2.py")):
        importlib.import_module(".".join(module.relative_to(root).with_suffix("").parts))
    service, _, method = name.partition("/")
    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    except KeyError:
        sys.exit(f"subscriber.py: method {name!r} not found in {root}")
    if descriptor.client_streaming or not descriptor.server_streaming:
        sys.exit(f"subscriber.py: {name} is not a server-streaming method")
    return descriptor


def main() -> None:
    args = parse_args()
    descriptor = load_method(args.proto_root, args.method)
    request_cls = message_factory.GetMessageClass(descriptor.input_type)
    response_cls = message_factory.GetMessageClass(descriptor.output_type)
    try:
        base_request = json_format.Parse(args.request, request_cls())
    except json_format.ParseError as err:
        sys.exit(f"subscriber.py: bad --request: {err}")
    if args.resume and args.resume_field not in descriptor.input_type.fields_by_name:
        sys.exit(f"subscriber.py: {descriptor.input_type.full_name} has no field {args.resume_field!r}")
    if args.sequence_field not in descriptor.output_type.fields_by_name:
        sys.exit(f"subscriber.py: {descriptor.output_type.full_name} has no field {args.sequence_field!r}")

    options = []
    if args.keepalive_time_ms is not None:
        options = [("grpc.keepalive_time_ms", args.keepalive_time_ms),
                   ("grpc.keepalive_timeout_ms", args.keepalive_timeout_ms),
                   ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.http2.max_pings_without_data", 0),
                   ("grpc.http2.ping_timeout_ms", args.keepalive_timeout_ms)]
    channel = grpc.insecure_channel(args.target, options=options)
    subscribe = channel.unary_stream(f"/{args.method}", request_serializer=request_cls.SerializeToString,
                                     response_deserializer=response_cls.FromString)

    stop = threading.Event()
    lock = threading.Lock()
    current = [None]

    def stop_now(*_):
        stop.set()
        with lock:
            if current[0] is not None:
                current[0].cancel()

    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    timer = threading.Timer(args.duration_s, stop_now)
    timer.daemon = True
    timer.start()

    report = {"client_id": args.client_id, "library": f"grpcio {grpc.__version__}", "attempts": 0,
              "messages": 0, "endings": {}, "resumed_from": [], "delays_ms": [], "retry_info_ms": [],
              "attempt_times_unix_ms": []}
    backoff = Backoff(args)
    last_sequence = 0
    started = time.monotonic()
    while not stop.is_set():
        request = request_cls()
        request.CopyFrom(base_request)
        resume_from = last_sequence if args.resume else 0
        if args.resume:
            setattr(request, args.resume_field, resume_from)
        report["resumed_from"].append(resume_from)
        report["attempts"] += 1
        report["attempt_times_unix_ms"].append(round(time.time() * 1000, 3))
        with lock:
            call = subscribe(request, timeout=args.deadline_s, metadata=[("x-client-id", args.client_id)],
                             wait_for_ready=not args.fail_fast)
            current[0] = call
        received = 0
        try:
            for message in call:
                received += 1
                last_sequence = getattr(message, args.sequence_field)
            code = "OK"
        except grpc.RpcError as err:
            code = err.code().name
        with lock:
            current[0] = None
        report["messages"] += received
        if stop.is_set() and code == "CANCELLED":
            # Our own cancel at the end of the run, not an ending the server caused.
            code = "STOPPED"
        report["endings"][code] = report["endings"].get(code, 0) + 1
        if stop.is_set():
            break
        if received:
            backoff.reset()
        delay = backoff.next_s()
        hint = retry_info_s(call) if code != "OK" else None
        report["retry_info_ms"].append(None if hint is None else round(hint * 1000, 3))
        if hint is not None and args.honor_retry_info:
            delay = max(delay, hint)
        report["delays_ms"].append(round(delay * 1000, 3))
        stop.wait(delay)
    report["duration_s"] = round(time.monotonic() - started, 3)
    channel.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
