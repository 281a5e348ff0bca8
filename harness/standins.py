"""The images of the compose phase, built here because no registry can be reached: a Debian
base from the machine's own mirror (debootstrap), stand-ins for the upstream images compose
pulls (tests/compose/standins/, each with its contract in its Dockerfile), and the project's
own images from its own Dockerfiles, their base images reached through local tags.
"""

import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.engine import Engine
from labctl.config import ROOT
from labctl.proc import LabError

STANDINS = ROOT / "tests" / "compose" / "standins"
BASE = "lab-standin/debian:bookworm"
SUITE = "bookworm"
# compose service -> its stand-in's folder and tag (Grafana has none: no Debian package).
SERVICE_STANDINS = {
    "db": ("postgres", "lab-standin/postgres:15"),
    "rabbitmq": ("rabbitmq", "lab-standin/rabbitmq:3.10"),
    "gateway": ("nginx", "lab-standin/nginx:1.22"),
    "prometheus": ("prometheus", "lab-standin/prometheus:2.42"),
    "alertmanager": ("alertmanager", "lab-standin/alertmanager:0.25"),
    "jaeger": ("jaeger", "lab-standin/jaeger:tracestore"),
}
WITHOUT_STANDIN = {"grafana": "Grafana has no Debian package and no image can be pulled"}
DEBOOTSTRAP_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 900


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The machine's Debian mirror for SUITE, from its deb822 .sources or sources.list."""
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    for path in [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                m = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
                if m:
                    return m.group(1)
    raise LabError(f"no Debian {SUITE} mirror in {sources}/sources.list(.d)")


def from_image(dockerfile: Path) -> str:
    """The last stage's base image of a Dockerfile (the tag the stand-in must carry)."""
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
    if not bases:
        raise LabError(f"{dockerfile} has no FROM line")
    return bases[-1]


def build_base(engine: Engine, workdir: Path) -> None:
    """Debian minbase from the machine's mirror, trusting the machine's extra CAs (its egress
    to PyPI inspects TLS), with policy-rc.d refusing service starts as Debian's images do."""
    started = time.monotonic()
    rootfs = workdir / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    r = subprocess.run(["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE,
                        str(rootfs), debian_mirror()], capture_output=True, text=True,
                       timeout=DEBOOTSTRAP_TIMEOUT_S)
    if r.returncode != 0:
        raise LabError(f"debootstrap failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    extra = rootfs / "usr/local/share/ca-certificates"
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, extra / crt.name)
    subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], capture_output=True,
                   check=True)
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# No services start inside an image build.\nexit 101\n")
    policy.chmod(0o755)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    r = subprocess.run(["docker", "import", "--change", 'CMD ["bash"]', "-", BASE],
                       stdin=tar.stdout, env=engine.env, capture_output=True, text=True)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    if r.returncode != 0:
        raise LabError(f"docker import failed: {r.stderr[-1500:]}")
    tag(engine, BASE, from_image(ROOT / "exporters" / "Dockerfile"))
    print(f"lab: Debian base image built in {time.monotonic() - started:.0f}s", flush=True)


def tag(engine: Engine, source: str, target: str) -> None:
    engine.docker("tag", source, target)


def build(engine: Engine, tags: list[str], context: Path, dockerfile: Path | None = None,
          args: dict[str, str] | None = None) -> None:
    """docker build on the host's network (the engine has no NAT of its own)."""
    argv = ["build", "--network", "host", "--quiet"]
    for t in tags:
        argv += ["-t", t]
    for key, value in (args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    started = time.monotonic()
    r = engine.docker(*argv, str(context), timeout_s=BUILD_TIMEOUT_S, check=False)
    if r.returncode != 0:
        raise LabError(f"building {tags[0]} from {context} failed:\n"
                       f"{r.stderr.decode(errors='replace')[-3000:]}")
    print(f"lab: built {', '.join(tags)} in {time.monotonic() - started:.0f}s", flush=True)


def build_standin(engine: Engine, folder: str, tag_: str, app_image: str = "") -> None:
    context = STANDINS / folder
    if folder != "jaeger":
        build(engine, [tag_], context)
        return
    with tempfile.TemporaryDirectory() as tmp:  # the trace stand-in's code, beside its files
        shutil.copytree(context, tmp, dirs_exist_ok=True)
        shutil.copytree(ROOT / "tracestore", Path(tmp) / "tracestore",
                        ignore=shutil.ignore_patterns("__pycache__"))
        build(engine, [tag_], Path(tmp), args={"APP_IMAGE": app_image})


def build_all(engine: Engine, workdir: Path, project_builds: dict[tuple[str, str], list[str]],
              app_image: str) -> None:
    """Base, stand-ins and project images, in dependency order, two builds at a time."""
    build_base(engine, workdir)
    python_tag = from_image(ROOT / "Dockerfile")
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = [pool.submit(build, engine, [python_tag], STANDINS / "python")]
        first += [pool.submit(build_standin, engine, folder, t)
                  for name, (folder, t) in SERVICE_STANDINS.items() if name != "jaeger"]
        for f in first:
            f.result()
        project = [pool.submit(build, engine, tags, Path(context), Path(dockerfile))
                   for (context, dockerfile), tags in project_builds.items()]
        for f in project:
            f.result()
    folder, jaeger_tag = SERVICE_STANDINS["jaeger"]
    build_standin(engine, folder, jaeger_tag, app_image=app_image)
