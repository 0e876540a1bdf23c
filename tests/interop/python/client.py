"""Generic gRPC client (Python grpcio) for the streamstorm interop tests.

Calls any method whose generated *_pb2 module is under a --proto-root and prints
one JSON object describing the call (with --call-starts-ms, several calls on one
channel: {"calls": [...]}). A non-OK status is data (exit code 0); only harness
errors (bad arguments, unknown method, bad JSON) exit non-zero.
"""
import argparse
import base64
import importlib
import json
import os
import pathlib
import sys
import threading
import time

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory

DEFAULT_GEN_DIR = pathlib.Path(
    os.environ.get("STREAMSTORM_INTEROP_DIR", pathlib.Path(__file__).resolve().parents[3] / ".interop")
) / "python-gen"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="HOST:PORT, e.g. 127.0.0.1:50051")
    p.add_argument("--proto-root", action="append", type=pathlib.Path,
                   help=f"directory of generated *_pb2.py modules (repeatable; default {DEFAULT_GEN_DIR})")
    p.add_argument("--proto", action="append",
                   help="only load the module generated from this .proto (path relative to the proto root; "
                        "repeatable; default: every *_pb2.py under the roots)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--method", help="full method name: package.Service/Method")
    what.add_argument("--health", metavar="SERVICE_NAME",
                      help='call grpc.health.v1.Health/Check for this service ("" = whole server)')
    p.add_argument("--requests", default="[{}]", help="JSON array of request messages (proto3 JSON mapping)")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                   help="request metadata (repeatable); values of keys ending in -bin are base64")
    p.add_argument("--timeout", type=float, help="deadline in seconds")
    p.add_argument("--send-interval-ms", type=int, default=0, help="pause between streamed requests")
    p.add_argument("--cancel-after", type=int, metavar="N", help="cancel the call after receiving N responses")
    p.add_argument("--rich-status", action="store_true",
                   help="decode the grpc-status-details-bin trailer as google.rpc.Status into 'rich_status'")
    p.add_argument("--channel-option", action="append", default=[], metavar="KEY=VALUE",
                   help="grpcio channel argument, e.g. grpc.keepalive_time_ms=1000 (repeatable; "
                        "integer values are passed as integers)")
    p.add_argument("--tls-root", type=pathlib.Path, metavar="PEM",
                   help="connect over TLS, trusting these CA certificates (grpc.ssl_channel_credentials)")
    p.add_argument("--tls-cert", type=pathlib.Path, metavar="PEM", help="client certificate chain (with --tls-root)")
    p.add_argument("--tls-key", type=pathlib.Path, metavar="PEM", help="client private key (with --tls-cert)")
    p.add_argument("--call-starts-ms", metavar="MS[,MS...]",
                   help="connect the channel, then make one call per entry on it, each started this many "
                        "ms after the first, and print {\"calls\": [...]}")
    p.add_argument("--channel-per-call", action="store_true",
                   help="with --call-starts-ms: each call on a channel (and connection) of its own")
    p.add_argument("--warm-up", action="store_true",
                   help="with --call-starts-ms: before the timed calls, a unary and a server-streaming "
                        "call to a method no server has (answered UNIMPLEMENTED), so the timed calls do "
                        "not pay the library's first-call costs")
    args = p.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None) or (args.tls_cert and not args.tls_root):
        p.error("--tls-cert and --tls-key go together, with --tls-root")
    if args.cancel_after is not None and args.cancel_after < 1:
        p.error("--cancel-after must be >= 1")
    try:
        args.channel_options = [parse_channel_option(option) for option in args.channel_option]
    except ValueError as err:
        p.error(str(err))
    try:
        args.call_starts = None if args.call_starts_ms is None else \
            [float(ms) for ms in args.call_starts_ms.split(",")]
    except ValueError:
        p.error(f"--call-starts-ms expects comma-separated numbers, got {args.call_starts_ms!r}")
    return args


def parse_channel_option(option: str):
    key, sep, value = option.partition("=")
    if not sep:
        raise ValueError(f"--channel-option expects KEY=VALUE, got {option!r}")
    try:
        return key, int(value)
    except ValueError:
        return key, value


def load_modules(roots, protos) -> None:
    """Import generated modules so their descriptors land in the default pool."""
    for root in roots:
        if not root.is_dir():
            sys.exit(f"client.py: proto root {root} is not a directory")
        sys.path.append(str(root.resolve()))
    if protos:
        names = [p.removesuffix(".proto").replace("-", "_").replace("/", ".") + "_pb2" for p in protos]
    else:
        names = [".".join(f.relative_to(root).with_suffix("").parts)
                 for root in roots for f in sorted(root.rglob("*_pb2.py"))]
    for name in names:
        importlib.import_module(name)


def metadata_to_json(metadata) -> dict:
    out = {}
    for key, value in metadata or ():
        text = base64.b64encode(value).decode() if key.endswith("-bin") else value
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def parse_metadata(pairs) -> list:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"client.py: --metadata expects KEY=VALUE, got {pair!r}")
        key = key.lower()
        out.append((key, base64.b64decode(value) if key.endswith("-bin") else value))
    return out


def main() -> None:
    args = parse_args()
    load_modules(args.proto_root or [DEFAULT_GEN_DIR], args.proto)
    if args.health is not None:
        from grpc_health.v1 import health_pb2  # noqa: F401  (registers grpc.health.v1 in the pool)
        args.method, request_dicts = "grpc.health.v1.Health/Check", [{"service": args.health}]
    else:
        try:
            request_dicts = json.loads(args.requests)
        except json.JSONDecodeError as err:
            sys.exit(f"client.py: --requests is not valid JSON: {err}")
        if not isinstance(request_dicts, list):
            sys.exit("client.py: --requests must be a JSON array")

    service_name, _, method_name = args.method.partition("/")
    try:
        method = descriptor_pool.Default().FindServiceByName(service_name).methods_by_name[method_name]
    except KeyError:
        sys.exit(f"client.py: method {args.method!r} not found in the loaded protos")
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    try:
        requests = [json_format.ParseDict(d, request_cls()) for d in request_dicts]
    except json_format.ParseError as err:
        sys.exit(f"client.py: bad request for {method.input_type.full_name}: {err}")
    if not method.client_streaming and len(requests) != 1:
        sys.exit(f"client.py: {args.method} is not client-streaming; pass exactly one request")

    def multicallable_on(channel):
        kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
                (True, False): channel.stream_unary, (True, True): channel.stream_stream}
        return kind[(method.client_streaming, method.server_streaming)](
            f"/{service_name}/{method_name}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )

    metadata = parse_metadata(args.metadata)
    if args.call_starts is None:
        channel = open_channel(args)
        result = make_call(args, method, multicallable_on(channel), requests, metadata)
        channel.close()
    elif args.channel_per_call:
        # One channel, so one connection, per call: its own subchannel pool keeps grpcio from
        # sharing connections between channels to the same target.
        args.channel_options.append(("grpc.use_local_subchannel_pool", 1))
        channels = [open_channel(args) for _ in args.call_starts]
        for channel in channels:
            wait_ready(channel, args.target)
            if args.warm_up:
                warm_up(channel)
        multicallables = [multicallable_on(channel) for channel in channels]
        result = {"calls": make_calls(args, method, lambda i: multicallables[i], requests, metadata)}
        for channel in channels:
            channel.close()
    else:
        # Connected first, so the offsets are between calls on a live connection.
        channel = open_channel(args)
        wait_ready(channel, args.target)
        if args.warm_up:
            warm_up(channel)
        multicallable = multicallable_on(channel)
        result = {"calls": make_calls(args, method, lambda _: multicallable, requests, metadata)}
        channel.close()
    json.dump(result, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


def wait_ready(channel, target) -> None:
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        sys.exit(f"client.py: could not connect to {target} within 10 s")


def warm_up(channel) -> None:
    path = "/streamstorm.interop.WarmUp/Call"
    try:
        channel.unary_unary(path)(b"")
    except grpc.RpcError:
        pass
    try:
        for _ in channel.unary_stream(path)(b""):
            pass
    except grpc.RpcError:
        pass


def open_channel(args) -> grpc.Channel:
    if args.tls_root is None:
        return grpc.insecure_channel(args.target, options=args.channel_options)
    read = lambda path: None if path is None else path.read_bytes()  # noqa: E731
    credentials = grpc.ssl_channel_credentials(read(args.tls_root), read(args.tls_key), read(args.tls_cert))
    return grpc.secure_channel(args.target, credentials, options=args.channel_options)


def make_calls(args, method, multicallable_for, requests, metadata) -> list:
    """One call per --call-starts-ms entry, each in its own thread, the i-th on the multicallable
    multicallable_for(i) gives."""
    origin = time.monotonic()
    results = [None] * len(args.call_starts)

    def run(index, start_ms):
        time.sleep(max(0.0, origin + start_ms / 1000 - time.monotonic()))
        started_at_ms = round((time.monotonic() - origin) * 1000, 3)
        results[index] = {"started_at_ms": started_at_ms,
                          **make_call(args, method, multicallable_for(index), requests, metadata)}

    threads = [threading.Thread(target=run, args=(i, ms)) for i, ms in enumerate(args.call_starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def make_call(args, method, multicallable, requests, metadata) -> dict:
    start = time.monotonic()
    elapsed_ms = lambda: round((time.monotonic() - start) * 1000, 3)  # noqa: E731
    sent_at, received_at, responses = [], [], []

    def request_stream():
        for i, request in enumerate(requests):
            if i and args.send_interval_ms:
                time.sleep(args.send_interval_ms / 1000)
            sent_at.append(elapsed_ms())
            yield request

    if method.client_streaming:
        request_arg = request_stream()
    else:
        request_arg = requests[0]
        sent_at.append(elapsed_ms())
    invoke = multicallable if method.server_streaming else multicallable.future
    call = invoke(request_arg, timeout=args.timeout, metadata=metadata)

    def record(response):
        responses.append(response)
        received_at.append(elapsed_ms())

    try:
        if not method.server_streaming:
            record(call.result())
        else:
            for response in call:
                record(response)
                if args.cancel_after is not None and len(responses) >= args.cancel_after:
                    call.cancel()
                    break
    except grpc.RpcError:
        pass  # the status is reported below
    ended_at = elapsed_ms()

    result = {
        "responses": [json_format.MessageToDict(r, preserving_proto_field_name=True) for r in responses],
        "code": call.code().name,
        "details": call.details() or "",
        "initial_metadata": metadata_to_json(call.initial_metadata()),
        "trailing_metadata": metadata_to_json(call.trailing_metadata()),
        "received_at_ms": received_at,
        "sent_at_ms": list(sent_at),  # the request thread may still be running
        "ended_at_ms": ended_at,
    }
    if args.rich_status:
        from google.rpc import error_details_pb2  # noqa: F401  (standard detail types for Any)
        from grpc_status import rpc_status
        status = rpc_status.from_call(call)
        result["rich_status"] = status and json_format.MessageToDict(status, preserving_proto_field_name=True)
    return result


if __name__ == "__main__":
    main()
