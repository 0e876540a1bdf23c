"""Relay check (Python grpcio): K concurrent calls of each call pattern against a target that
leads to the interop upstream (upstream.py), every message checked.

Each call sends requests of its own, recomputes the upstream's answers from them
(relay_messages.py) and compares every response, in order, and the echoed headers and
trailers. Prints one JSON summary: per pattern, calls made, calls that got everything right,
messages received, final codes, and the first few mismatches. Only harness errors exit non-zero;
a wrong relay is data.
"""
import argparse
import asyncio
import json
import os
import pathlib
import sys
from collections import Counter

import grpc
from google.protobuf import json_format

import relay_messages as rules

GEN_DIR = pathlib.Path(
    os.environ.get("STREAMSTORM_INTEROP_DIR", pathlib.Path(__file__).resolve().parents[3] / ".interop")
) / "python-gen"
sys.path.append(str(GEN_DIR))

from myapp import chat_pb2, chat_pb2_grpc  # noqa: E402
from myapp import notification_pb2, notification_pb2_grpc  # noqa: E402
from myapp import upload_pb2, upload_pb2_grpc  # noqa: E402
from myapp import user_pb2, user_pb2_grpc  # noqa: E402

PATTERNS = ("unary", "server", "client", "bidi")
# Mismatches kept per pattern in the summary.
KEPT_PROBLEMS = 5


def normalized(values: dict, message) -> dict:
    """`values` as the library renders the message they make (defaults omitted)."""
    parsed = json_format.ParseDict(values, message)
    return json_format.MessageToDict(parsed, preserving_proto_field_name=True)


def rendered(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class Check:
    """One call's findings: the responses it got and what was wrong with them."""

    def __init__(self, call: int):
        self.call = call
        self.received = 0
        self.problems = []

    def expect(self, what: str, got, wanted) -> None:
        if got != wanted:
            self.problems.append(f"call {self.call}: {what}: got {got!r}, expected {wanted!r}")

    def response(self, index: int, got, wanted: dict) -> None:
        self.received += 1
        self.expect(f"response {index}", rendered(got), wanted)

    async def finish(self, call, received_requests: int) -> str:
        """Checks the status and the echoed metadata once the call ended; returns the code."""
        code = (await call.code()).name
        self.expect("status", (code, await call.details()), ("OK", ""))
        headers = dict(await call.initial_metadata() or ())
        self.expect("echoed header", headers.get("x-echo-call"), str(self.call))
        trailers = dict(await call.trailing_metadata() or ())
        self.expect("echoed trailer", trailers.get("x-trailer-echo-call"), str(self.call))
        self.expect("requests the upstream received", trailers.get(rules.RECEIVED_TRAILER), str(received_requests))
        return code


def call_metadata(args, call: int) -> tuple:
    pairs = [("x-echo-call", str(call)), ("x-trailer-echo-call", str(call)),
             (rules.MESSAGES_KEY, str(args.messages))]
    return tuple(pairs + args.extra_metadata)


async def unary(stubs, args, call: int, check: Check) -> str:
    user_id = f"u{call}"
    invocation = stubs["unary"].GetUser(user_pb2.GetUserRequest(user_id=user_id),
                                        metadata=call_metadata(args, call), timeout=args.timeout)
    check.response(0, await invocation, normalized(rules.user(user_id), user_pb2.User()))
    return await check.finish(invocation, 1)


async def server_streaming(stubs, args, call: int, check: Check) -> str:
    topics, resume_after = [f"t{call}", "shared"], call * 1000
    request = notification_pb2.SubscribeRequest(topics=topics, resume_after=resume_after)
    invocation = stubs["server"].Subscribe(request, metadata=call_metadata(args, call), timeout=args.timeout)
    index = 0
    async for notification in invocation:
        wanted = normalized(rules.notification(topics, resume_after, index), notification_pb2.Notification())
        check.response(index, notification, wanted)
        index += 1
    check.expect("responses", index, args.messages)
    return await check.finish(invocation, 1)


async def client_streaming(stubs, args, call: int, check: Check) -> str:
    chunks = [{"data": rules.chunk_data(call, i), "sequence": i, "is_last": i == args.messages - 1}
              for i in range(args.messages)]

    async def requests():
        for chunk in chunks:
            yield upload_pb2.FileChunk(**chunk)

    invocation = stubs["client"].UploadFile(requests(), metadata=call_metadata(args, call), timeout=args.timeout)
    check.response(0, await invocation, normalized(rules.upload_summary(chunks), upload_pb2.UploadResponse()))
    return await check.finish(invocation, len(chunks))


async def bidi(stubs, args, call: int, check: Check) -> str:
    """Ping-pong: each message is answered before the next is sent, so a relay that held
    messages back (until the half-close, say) runs into the deadline."""
    invocation = stubs["bidi"].Chat(metadata=call_metadata(args, call), timeout=args.timeout)
    for index in range(args.messages):
        content = f"c{call}-{index}"
        await invocation.write(chat_pb2.ChatMessage(user_id=f"u{call}", content=content))
        reply = await invocation.read()
        if reply is grpc.aio.EOF:
            check.expect(f"response {index}", "end of stream", "a reply")
            break
        check.response(index, reply, normalized(rules.chat_reply(index, content), chat_pb2.ChatMessage()))
    await invocation.done_writing()
    check.expect("end of stream", await invocation.read(), grpc.aio.EOF)
    return await check.finish(invocation, args.messages)


RUNNERS = {"unary": unary, "server": server_streaming, "client": client_streaming, "bidi": bidi}


async def run_one(pattern: str, stubs, args, call: int) -> tuple:
    check = Check(call)
    try:
        code = await RUNNERS[pattern](stubs, args, call, check)
    except grpc.aio.AioRpcError as error:
        code = error.code().name
        check.problems.append(f"call {call}: ended {code}: {error.details()}")
    return check, code


async def run_pattern(pattern: str, channels: list, args) -> dict:
    stubs_per_channel = [{
        "unary": user_pb2_grpc.UserServiceStub(channel),
        "server": notification_pb2_grpc.NotificationServiceStub(channel),
        "client": upload_pb2_grpc.UploadServiceStub(channel),
        "bidi": chat_pb2_grpc.ChatServiceStub(channel),
    } for channel in channels]
    results = await asyncio.gather(*(run_one(pattern, stubs_per_channel[call % len(channels)], args, call)
                                     for call in range(args.calls)))
    problems = [problem for check, _ in results for problem in check.problems]
    return {
        "calls": args.calls,
        "ok": sum(1 for check, _ in results if not check.problems),
        "messages": sum(check.received for check, _ in results),
        "codes": dict(Counter(code for _, code in results)),
        "problems": problems[:KEPT_PROBLEMS],
    }


def open_channel(args) -> grpc.aio.Channel:
    # Every channel a connection of its own, so --channels spreads the calls over connections.
    options = [("grpc.use_local_subchannel_pool", 1)]
    if args.tls_root is None:
        return grpc.aio.insecure_channel(args.target, options=options)
    credentials = grpc.ssl_channel_credentials(args.tls_root.read_bytes())
    return grpc.aio.secure_channel(args.target, credentials, options=options)


async def main(args) -> None:
    channels = [open_channel(args) for _ in range(args.channels)]
    summary = {"library": f"grpcio {grpc.__version__}", "target": args.target, "patterns": {}}
    # The patterns at once: K calls of each in flight together.
    reports = await asyncio.gather(*(run_pattern(pattern, channels, args) for pattern in args.patterns))
    summary["patterns"] = dict(zip(args.patterns, reports))
    for channel in channels:
        await channel.close()
    json.dump(summary, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--calls", type=int, default=10, help="concurrent calls per pattern")
    p.add_argument("--messages", type=int, default=5, help="messages per streamed call (each way it streams)")
    p.add_argument("--patterns", default=",".join(PATTERNS), help="comma-separated subset of " + ",".join(PATTERNS))
    p.add_argument("--channels", type=int, default=1, help="connections the calls are spread over")
    p.add_argument("--timeout", type=float, default=30.0, help="deadline of each call, in seconds")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                   help="extra request metadata on every call (repeatable)")
    p.add_argument("--tls-root", type=pathlib.Path, metavar="PEM", help="connect over TLS, trusting these CAs")
    args = p.parse_args()
    args.patterns = args.patterns.split(",")
    unknown = set(args.patterns) - set(PATTERNS)
    if unknown or args.calls < 1 or args.messages < 1 or args.channels < 1:
        p.error(f"bad --patterns {sorted(unknown)} or a count below 1")
    args.extra_metadata = []
    for pair in args.metadata:
        key, sep, value = pair.partition("=")
        if not sep:
            p.error(f"--metadata expects KEY=VALUE, got {pair!r}")
        args.extra_metadata.append((key.lower(), value))
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
