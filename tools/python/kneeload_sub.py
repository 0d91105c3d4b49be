#!/usr/bin/env python3
"""Reference subscriber for kneeloadd's PUB stream, for lab researchers to copy.

Prints one JSON object per message on stdout (topic, message type and every field, with
proto field names), and warns on stderr when a topic's sequence number jumps, i.e. when this
subscriber lost messages. Needs Debian's python3-zmq and python3-protobuf, plus the modules
protoc generates from proto/kneeload/v1 (the build puts them in build/<flavour>/python; point
KNEELOAD_PYTHONPATH there, or pass --pythonpath).

    kneeload_sub.py --endpoint tcp://127.0.0.1:5601 --topic risk/ --topic step/st01
"""
import argparse
import json
import math
import os
import sys


def _load_modules(extra_path):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [p for p in (extra_path, os.environ.get("KNEELOAD_PYTHONPATH")) if p]
    candidates += [os.path.join(here, "..", "..", "build", f, "python") for f in ("release", "asan")]
    for path in candidates:
        if os.path.isfile(os.path.join(path, "kneeload", "v1", "publish_pb2.py")):
            sys.path.insert(0, path)
            break
    try:
        from kneeload.v1 import publish_pb2  # noqa: F401
    except ImportError as e:
        sys.exit(f"kneeload_sub: cannot import the generated kneeload.v1 modules ({e}); "
                 "build the project first or set KNEELOAD_PYTHONPATH to build/release/python")
    return publish_pb2


TYPES = {"state": "FusedState", "step": "StepMetrics", "risk": "RiskEvent",
         "session": "SessionSummary", "status": "DaemonStatus"}


def _clean(value):
    """JSON has no NaN: the daemon uses NaN for "unknown", which becomes null here."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5601", help="kneeloadd publish endpoint")
    parser.add_argument("--topic", action="append", default=[],
                        help="topic prefix to print (repeatable; default: everything)")
    parser.add_argument("--count", type=int, default=0, help="exit after printing this many messages")
    parser.add_argument("--timeout", type=float, default=0, help="exit after this many seconds")
    parser.add_argument("--pythonpath", help="directory holding the generated kneeload/v1 modules")
    args = parser.parse_args()

    publish_pb2 = _load_modules(args.pythonpath)
    import zmq
    from google.protobuf.json_format import MessageToDict

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100000)
    wanted = args.topic or [""]
    # Always take status too: the first heartbeat proves the subscription is live.
    for prefix in set(wanted + ["status"]):
        sock.setsockopt_string(zmq.SUBSCRIBE, prefix)
    sock.connect(args.endpoint)

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    last_seq = {}
    printed = 0
    ready = False
    deadline = None
    if args.timeout > 0:
        import time
        deadline = time.monotonic() + args.timeout
    while True:
        wait_ms = 200
        if deadline is not None:
            import time
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            wait_ms = min(wait_ms, int(left * 1000) + 1)
        if not poller.poll(wait_ms):
            continue
        parts = sock.recv_multipart()
        if len(parts) != 2:
            print(f"kneeload_sub: ignoring a message of {len(parts)} parts", file=sys.stderr)
            continue
        topic = parts[0].decode("utf-8", "replace")
        kind = topic.split("/", 1)[0]
        type_name = TYPES.get(kind)
        if type_name is None:
            print(f"kneeload_sub: unknown topic {topic!r}", file=sys.stderr)
            continue
        msg = getattr(publish_pb2, type_name)()
        msg.ParseFromString(parts[1])
        seq = msg.header.seq
        previous = last_seq.get(topic)
        if previous is not None and seq != previous + 1:
            print(f"kneeload_sub: {topic}: lost {seq - previous - 1} message(s) (seq {previous} -> {seq})",
                  file=sys.stderr)
        last_seq[topic] = seq
        if not ready and kind == "status":
            ready = True
            print("kneeload_sub: subscribed", file=sys.stderr, flush=True)
        if not any(topic.startswith(p) for p in wanted):
            continue
        record = {"topic": topic, "type": type_name,
                  "message": _clean(MessageToDict(msg, preserving_proto_field_name=True,
                                                  including_default_value_fields=True))}
        print(json.dumps(record, sort_keys=True), flush=True)
        printed += 1
        if args.count and printed >= args.count:
            return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
