"""`effnet serve --model lite0 --weights lite0 [--backend onnxruntime] [--port 8000] [--ray --replicas 2]`."""

from __future__ import annotations

import argparse

from effnet.choices import BACKENDS, MAX_PIXELS
from effnet.commands._args import nonnegative_int, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a model over HTTP: /predict, KServe v2 routes, /metrics, a page",
                              description="Serve one model over HTTP with dynamic batching. Routes: GET / (upload "
                                          "page), POST /predict (multipart 'image' fields or a raw image body), "
                                          "KServe v2 under /v2, GET /metrics (Prometheus). SIGTERM or Ctrl-C "
                                          "drains: accepted requests are answered, then exit 0.")
    p.add_argument("--model", default=None, help="model name (default: what the weights say)")
    p.add_argument("--weights", default="lite0",
                   help="registry tag (lite0, torchvision/b0, ...), weights file, or an effnet train run folder "
                        "(its classes, model and image size)")
    p.add_argument("--backend", default="eager", metavar="{" + ",".join(BACKENDS) + "}",
                   help="how to run the model (default eager); see docs/deploy.md")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=nonnegative_int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--max-batch-size", type=positive_int, default=8, help="images per batch at most (default 8)")
    p.add_argument("--max-queue-delay-ms", type=positive_float, default=2.0,
                   help="how long a batch may wait for more requests (default 2 ms)")
    p.add_argument("--max-queue", type=positive_int, default=64,
                   help="requests waiting at most; more are answered 503 with Retry-After (default 64)")
    p.add_argument("--deadline-ms", type=positive_float, default=2000.0,
                   help="a request still queued after this is answered 503 (default 2000; a client may ask for "
                        "less with the X-Deadline-Ms header)")
    p.add_argument("--drain-timeout", type=positive_float, default=20.0,
                   help="on SIGTERM/Ctrl-C, seconds to finish accepted requests (default 20)")
    p.add_argument("--max-pixels", type=positive_int, default=None,
                   help=f"refuse images with more pixels than this, from the header (default {MAX_PIXELS:,}, PIL's)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads for the model (default: torch's)")
    p.add_argument("--ray", action="store_true", help="serve with Ray Serve replicas instead (needs effnet[ray])")
    p.add_argument("--replicas", type=positive_int, default=1, help="with --ray: how many replicas (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.backend not in BACKENDS:  # checked here, not by argparse: the one-line message names them all
        raise ValueError(f"unknown backend {args.backend!r}; choose from {', '.join(BACKENDS)}")
    if args.replicas > 1 and not args.ray:
        raise ValueError("--replicas needs --ray (one process serves one replica)")
    if args.ray:
        try:
            from effnet.serve.ray_app import serve_with_ray
        except ImportError as exc:
            raise ValueError(f"--ray needs Ray Serve ({exc}); install it with: pip install 'effnet[ray]'") from None

        return serve_with_ray(args)
    from effnet.serve.server import bind

    sock = bind(args.host, args.port)  # before loading: a port in use fails in a second, not after the model
    try:
        import torch

        from effnet.deploy.pipeline import load_classifier
        from effnet.serve import local_app, warm_up
        from effnet.serve.server import serve

        if args.threads:
            torch.set_num_threads(args.threads)
        classifier = load_classifier(args.model, args.weights, args.backend)
        warm_up(classifier)
        app, state, batcher = local_app(classifier, max_batch_size=args.max_batch_size,
                                        max_delay_ms=args.max_queue_delay_ms, max_queue=args.max_queue,
                                        deadline_s=args.deadline_ms / 1000, max_pixels=args.max_pixels)
        return serve(state, app, sock, batcher, drain_timeout=args.drain_timeout)
    finally:
        sock.close()
