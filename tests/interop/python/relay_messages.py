"""The answers of the interop upstream (upstream.py), as pure functions of the requests.

The upstream sends them and the relay checks (relay_check.py, and node/relay_check.js, which
writes the same rules in JavaScript) recompute them from their own requests, so a client can
tell that every message crossed a proxy unchanged and in order. Each rule is documented in
tests/interop/README.md ("Upstream").
"""
import hashlib

# Metadata that steers the upstream (all optional).
MESSAGES_KEY = "x-upstream-messages"          # server-streaming responses (default 5; -1 endless)
INTERVAL_KEY = "x-upstream-interval-ms"       # pause before each streamed response ("50,80": in turn)
REPLIES_KEY = "x-upstream-replies"            # Chat: replies to each message (default 1)
STATUS_KEY = "x-upstream-status"              # end the call with this code (e.g. NOT_FOUND)
STATUS_MESSAGE_KEY = "x-upstream-status-message"
STATUS_DETAILS_KEY = "x-upstream-status-details"  # any value: add a google.rpc.ErrorInfo detail
ECHO_PREFIX = "x-echo-"                       # echoed back as response headers, same key
TRAILER_ECHO_PREFIX = "x-trailer-echo-"       # echoed back as trailers, same key
RECEIVED_TRAILER = "x-upstream-received"      # trailer: how many request messages arrived
DEFAULT_STREAM_MESSAGES = 5
# The ErrorInfo a status with details carries.
ERROR_INFO_REASON = "UPSTREAM_SAID_SO"
ERROR_INFO_DOMAIN = "upstream.streamstorm.test"


def user(user_id: str) -> dict:
    """GetUser: a user whose every field derives from the id."""
    return {
        "user_id": user_id,
        "name": f"user {user_id}",
        "roles": ["reader", f"role-{len(user_id)}"],
        "labels": {"id": user_id},
        "login_count": str(len(user_id) * 7),
        "email": f"{user_id}@upstream.test",
    }


def notification(topics: list, resume_after: int, index: int) -> dict:
    """Subscribe: the index-th notification (0-based) of a subscription."""
    sequence = resume_after + index + 1
    topic = topics[index % len(topics)] if topics else "none"
    return {"topic": topic, "message": f"{topic} #{sequence}", "sequence": str(sequence)}


def chunk_data(call: int, index: int) -> bytes:
    """The bytes a relay check sends as chunk `index` of upload `call`: distinct per chunk."""
    return f"call {call} chunk {index};".encode() * (1 + index % 3)


def upload_summary(chunks: list) -> dict:
    """UploadFile: counts, size and SHA-256 of the chunks' data in arrival order; SUCCESS when
    their `sequence` fields ran 0, 1, 2, ... and the last said `is_last`, else PARTIAL."""
    data = b"".join(chunk["data"] for chunk in chunks)
    in_order = [chunk["sequence"] for chunk in chunks] == list(range(len(chunks)))
    complete = in_order and bool(chunks) and chunks[-1]["is_last"]
    return {
        "file_id": f"chunks-{len(chunks)}",
        "total_size": str(len(data)),
        "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
        "status": "SUCCESS" if complete else "PARTIAL",
    }


def chat_reply(index: int, content: str, extra: int = 0) -> dict:
    """Chat: the answer to the index-th message (0-based) of a conversation; with
    `x-upstream-replies`, its extra-th further answer (from 1) ends in `+<extra>`."""
    suffix = f" +{extra}" if extra else ""
    return {"user_id": "upstream", "content": f"#{index + 1} {content}{suffix}", "type": "SYSTEM"}
