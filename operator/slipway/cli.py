"""The `slipway` command: the operator, the model puller and the embedded dev cluster."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from slipway.api.crd import KINDS, crd


def _dev_cluster_up(args: argparse.Namespace) -> int:
    from kubernetes import config

    from slipway.devcluster import BinariesMissing, ControlPlaneError, DevCluster
    from slipway.devcluster.install import apply_crds
    from slipway.devcluster.realnode import RealNodeUnavailable

    if args.node == "real" and args.minimal:
        print("slipway dev-cluster: --minimal starts no node, so not with --node real", file=sys.stderr)
        return 2
    if args.image and args.node != "real":
        print("slipway dev-cluster: --image is for a real node (--node real)", file=sys.stderr)
        return 2
    cluster = DevCluster(
        workdir=Path(args.workdir).resolve(),
        full=not args.minimal,
        node=args.node,
        images=[Path(image).resolve() for image in args.image],
        log=lambda m: print(f"[dev-cluster] {m}", flush=True),
    )
    try:
        cluster.start()
    except (BinariesMissing, ControlPlaneError, RealNodeUnavailable) as error:
        print(f"slipway dev-cluster: {error}", file=sys.stderr)
        return 1
    try:
        apply_crds(config.new_client_from_config(str(cluster.kubeconfig)), [crd(kind) for kind in KINDS])
        print(f"[dev-cluster] CRDs installed; export KUBECONFIG={cluster.kubeconfig}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        print("[dev-cluster] stopping")
        cluster.stop()
    return 0


def _run(args: argparse.Namespace) -> int:
    from slipway import allocator, lazyclient

    allocator.tune()  # before the handler threads start: each would take a malloc arena of its own
    lazyclient.install()  # before kopf and the client are imported: 23 MiB less resident
    from slipway.runner import run_operator
    from slipway.settings import settings

    operator = settings()
    if args.standalone:
        operator.standalone = True
    if args.namespace:
        operator.namespaces = args.namespace
    if args.metrics_port is not None:
        operator.metrics_port = args.metrics_port
    run_operator(operator, liveness_port=args.liveness_port, verbose=args.verbose)
    return 0


# verb -> (plural, annotation): a new value of the annotation is one request.
REQUESTS = {
    "promote": ("servingendpoints", "promote"),
    "abort": ("servingendpoints", "abort"),
    "retry": ("servingendpoints", "retry"),
    "train": ("trainingpipelines", "run"),
}


def _request(args: argparse.Namespace) -> int:
    """promote / abort / retry a ServingEndpoint's rollout, or train: start a TrainingPipeline run."""
    import time

    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    from slipway import GROUP, VERSION

    config.load_kube_config()
    plural, annotation = REQUESTS[args.command]
    token = str(time.time_ns())
    patch = {"metadata": {"annotations": {f"{GROUP}/{annotation}": token}}}
    try:
        client.CustomObjectsApi().patch_namespaced_custom_object(
            GROUP, VERSION, args.namespace, plural, args.name, patch
        )
    except ApiException as error:
        print(
            f"slipway {args.command}: {plural} {args.namespace}/{args.name}: {error.reason}", file=sys.stderr
        )
        return 1
    print(f"{args.command} requested for {plural[:-1]} {args.namespace}/{args.name} ({token})")
    return 0


def _pull(argv: list[str]) -> int:
    from slipway.storage.puller import cli_main

    return cli_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev-cluster", help="the embedded control plane")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    up = dev_commands.add_parser("up", help="start it in the foreground until Ctrl-C")
    up.add_argument("--workdir", default=".devcluster", help="where certs, data and logs go")
    up.add_argument("--minimal", action="store_true", help="etcd and kube-apiserver only")
    up.add_argument(
        "--node",
        choices=["kwok", "real"],
        default="kwok",
        help="kwok's fake node (no container runs), or a real one: containerd, kubelet, kube-proxy (root)",
    )
    up.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="ARCHIVE",
        help="an OCI archive the real node imports into containerd (repeatable; hack/images.sh builds them)",
    )
    up.set_defaults(func=_dev_cluster_up)
    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--namespace", action="append", help="serve only this namespace (repeatable)")
    run.add_argument("--standalone", action="store_true", help="no peering: a single replica")
    run.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port")
    run.add_argument("--liveness-port", type=int, default=8081, help="/healthz port for probes")
    run.add_argument("--verbose", action="store_true", help="log at DEBUG (kopf's handlers included)")
    run.set_defaults(func=_run)
    for verb, text in (
        ("promote", "skip the remaining canary steps and promote now"),
        ("abort", "abort the running rollout and return all traffic to stable"),
        ("retry", "allow versions that failed a rollout to be tried again"),
        ("train", "start a run of a TrainingPipeline now (trigger Manual)"),
    ):
        request = commands.add_parser(verb, help=text)
        target = "TrainingPipeline" if REQUESTS[verb][0] == "trainingpipelines" else "ServingEndpoint"
        request.add_argument("name", help=f"{target} name")
        request.add_argument("-n", "--namespace", default="default", help="its namespace")
        request.set_defaults(func=_request)
    commands.add_parser("pull", help="download a model directory atomically (see `slipway pull --help`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "pull":
        return _pull(argv[1:])
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
