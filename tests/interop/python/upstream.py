"""A real gRPC server (Python grpcio, asyncio) for the proxy tests: the upstream behind
`streamstorm proxy`.

It implements the example services in protos/myapp with deterministic answers derived from
the requests (relay_messages.py), so a client can check that every message crossed the proxy
unchanged and in order, and it is steered per call through request metadata (how many
messages, how far apart, which status to end with, which headers and trailers to echo).

stdout: first `upstream serving on [https://]HOST:PORT`, then one JSON line per call it saw,
written when the call ended: method, metadata, request messages, responses sent, the final
code, and the deadline left when the call arrived. A test reads it to tell whether a call
reached the upstream at all.
"""
import argparse
import asyncio
import base64
import json
import os
import pathlib
import signal
import sys

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

import relay_messages as rules

GEN_DIR = pathlib.Path(
    os.environ.get("STREAMSTORM_INTEROP_DIR", pathlib.Path(__file__).resolve().parents[3] / ".interop")
) / "python-gen"
sys.path.append(str(GEN_DIR))

from myapp import chat_pb2, chat_pb2_grpc  # noqa: E402
from myapp import notification_pb2, notification_pb2_grpc  # noqa: E402
from myapp import upload_pb2, upload_pb2_grpc  # noqa: E402
from myapp import user_pb2, user_pb2_grpc  # noqa: E402


def to_dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def from_dict(values: dict, message):
    return json_format.ParseDict(values, message)


class CallRecord:
    """What the upstream saw of one call; printed as a JSON line when the call ends."""

    def __init__(self, method: str, context):
        self.method = method
        self.context = context
        self.metadata = {}
        for key, value in context.invocation_metadata() or ():
            text = base64.b64encode(value).decode() if key.endswith("-bin") else value
            self.metadata[key] = f"{self.metadata[key]}, {text}" if key in self.metadata else text
        self.deadline_s = context.time_remaining()
        self.requests = []
        self.responses = 0
        self.code = "OK"

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _traceback):
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            self.code = "CANCELLED"
        elif kind is not None and self.code == "OK":
            self.code = f"ERROR {kind.__name__}: {error}"
        line = {"method": self.method, "metadata": self.metadata, "requests": self.requests,
                "responses": self.responses, "code": self.code, "deadline_s": self.deadline_s,
                "peer": self.context.peer()}
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return False


class Steering:
    """How the calling client asked this call to go, read from its metadata."""

    def __init__(self, record: CallRecord):
        metadata = record.metadata
        self.record = record
        self.messages = int(metadata.get(rules.MESSAGES_KEY, rules.DEFAULT_STREAM_MESSAGES))
        # One pause, or several ("50,80,65") taken in turn, cycling.
        self.intervals_s = [int(ms) / 1000 for ms in str(metadata.get(rules.INTERVAL_KEY, 0)).split(",")]
        self.paused = 0
        self.replies = int(metadata.get(rules.REPLIES_KEY, 1))
        self.status = metadata.get(rules.STATUS_KEY)
        self.status_message = metadata.get(rules.STATUS_MESSAGE_KEY, "")
        self.with_details = rules.STATUS_DETAILS_KEY in metadata
        self.headers = self.echoed(rules.ECHO_PREFIX)
        self.trailers = self.echoed(rules.TRAILER_ECHO_PREFIX)

    def echoed(self, prefix: str) -> list:
        pairs = []
        for key, value in self.record.context.invocation_metadata() or ():
            if key.startswith(prefix):
                pairs.append((key, value))
        return pairs

    async def begin(self):
        """Sends the echoed headers before anything else."""
        await self.record.context.send_initial_metadata(self.headers)

    @property
    def interval_s(self) -> float:
        return self.intervals_s[0]

    @interval_s.setter
    def interval_s(self, seconds: float):
        self.intervals_s = [seconds]

    async def pause(self):
        seconds = self.intervals_s[self.paused % len(self.intervals_s)]
        self.paused += 1
        if seconds:
            await asyncio.sleep(seconds)

    async def end(self):
        """Sets the trailers, and ends the call with the status asked for, if any."""
        context = self.record.context
        trailers = self.trailers + [(rules.RECEIVED_TRAILER, str(len(self.record.requests)))]
        if self.status is None:
            context.set_trailing_metadata(trailers)
            return
        code = grpc.StatusCode[self.status]
        self.record.code = self.status
        if self.with_details:
            info = error_details_pb2.ErrorInfo(reason=rules.ERROR_INFO_REASON, domain=rules.ERROR_INFO_DOMAIN)
            detail = status_pb2.Status(code=code.value[0], message=self.status_message)
            detail.details.add().Pack(info)
            trailers.append(("grpc-status-details-bin", detail.SerializeToString()))
        await context.abort(code, self.status_message, trailing_metadata=tuple(trailers))


class Users(user_pb2_grpc.UserServiceServicer):
    async def GetUser(self, request, context):
        with CallRecord("myapp.UserService/GetUser", context) as record:
            record.requests.append(to_dict(request))
            steering = Steering(record)
            await steering.begin()
            await steering.pause()
            await steering.end()
            record.responses = 1
            return from_dict(rules.user(request.user_id), user_pb2.User())


class Notifications(notification_pb2_grpc.NotificationServiceServicer):
    async def Subscribe(self, request, context):
        with CallRecord("myapp.NotificationService/Subscribe", context) as record:
            record.requests.append(to_dict(request))
            steering = Steering(record)
            if request.interval and rules.INTERVAL_KEY not in record.metadata:
                steering.interval_s = request.interval / 1000
            await steering.begin()
            index = 0
            while steering.messages < 0 or index < steering.messages:
                await steering.pause()
                values = rules.notification(list(request.topics), request.resume_after, index)
                yield from_dict(values, notification_pb2.Notification())
                record.responses += 1
                index += 1
            await steering.end()


class Uploads(upload_pb2_grpc.UploadServiceServicer):
    async def UploadFile(self, request_iterator, context):
        with CallRecord("myapp.UploadService/UploadFile", context) as record:
            steering = Steering(record)
            await steering.begin()
            chunks = []
            async for chunk in request_iterator:
                record.requests.append(to_dict(chunk))
                chunks.append({"data": chunk.data, "sequence": chunk.sequence, "is_last": chunk.is_last})
            await steering.pause()
            await steering.end()
            record.responses = 1
            return from_dict(rules.upload_summary(chunks), upload_pb2.UploadResponse())


class Chats(chat_pb2_grpc.ChatServiceServicer):
    async def Chat(self, request_iterator, context):
        with CallRecord("myapp.ChatService/Chat", context) as record:
            steering = Steering(record)
            await steering.begin()
            async for message in request_iterator:
                record.requests.append(to_dict(message))
                for extra in range(steering.replies):
                    await steering.pause()
                    reply = rules.chat_reply(len(record.requests) - 1, message.content, extra)
                    yield from_dict(reply, chat_pb2.ChatMessage())
                    record.responses += 1
            await steering.end()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    p.add_argument("--cert", type=pathlib.Path, help="serve TLS with this certificate chain (PEM)")
    p.add_argument("--key", type=pathlib.Path, help="the certificate's private key (PEM)")
    args = p.parse_args()
    if (args.cert is None) != (args.key is None):
        p.error("--cert and --key go together")
    return args


PENDING_CALLS = 100_000


async def serve(args: argparse.Namespace) -> None:
    # grpc core queues calls that arrive faster than the asyncio loop takes them, and past 1,000
    # queued it turns a growing random share away as CANCELLED before any handler runs. The
    # proxy tests open thousands of calls at once: let them all queue.
    server = grpc.aio.server(options=[
        ("grpc.server.max_pending_requests", PENDING_CALLS),
        ("grpc.server.max_pending_requests_hard_limit", PENDING_CALLS),
    ])
    user_pb2_grpc.add_UserServiceServicer_to_server(Users(), server)
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(Notifications(), server)
    upload_pb2_grpc.add_UploadServiceServicer_to_server(Uploads(), server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(Chats(), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    address = f"{args.host}:{args.port}"
    if args.cert is None:
        port, scheme = server.add_insecure_port(address), ""
    else:
        credentials = grpc.ssl_server_credentials([(args.key.read_bytes(), args.cert.read_bytes())])
        port, scheme = server.add_secure_port(address, credentials), "https://"
    if port == 0:
        sys.exit(f"upstream.py: cannot listen on {address}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    sys.stdout.write(f"upstream serving on {scheme}{args.host}:{port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
