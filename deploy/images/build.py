"""`make images`: the debootstrap base and every service image, built with rootful podman.

No image registry is reachable here (only package registries), so the base is a minimal Debian
bookworm made with debootstrap from Debian's own packages (its python3 is 3.11), saved as a
tarball under the image cache and imported into podman; it is rebuilt only when the tarball is
missing. Elsewhere `deploy/Containerfile` builds on `python:3.11-slim` unchanged.

podman runs here with runc (crun refuses the hybrid cgroup layout), without default ulimits
(setrlimit is not permitted) and with host networking: :func:`podman_env` writes the
containers.conf for that and every podman call of the deploy tooling goes through it.

    python deploy/images/build.py [--service gateway ...] [--base-only] [--rebuild-base]

Images are tagged ``$SMOLTBOT_IMAGE_REGISTRY/smoltbot-<service>:$SMOLTBOT_VERSION`` (defaults
``localhost`` and the workspace version), the names compose.yaml uses by default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IGNOREFILE = ROOT / "deploy" / "Containerfile.dockerignore"
SERVICES = ("gateway", "observer", "verifier", "persister", "api", "notifier")
IMAGES = (*SERVICES, "cli")
BASE_IMAGE = "localhost/smoltbot-base:bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# catatonit: the pause process `podman kube play` builds its infra container from.
APT_TOOLS = {
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "catatonit": "catatonit",
}
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'


def cache_dir() -> Path:
    """Where the base tarball and containers.conf live (``SMOLTBOT_IMAGE_CACHE``)."""
    default = Path.home() / ".cache" / "smoltbot-images"
    return Path(os.environ.get("SMOLTBOT_IMAGE_CACHE") or default)


def workspace_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def image_name(service: str) -> str:
    """The tag compose.yaml pulls for ``service`` (same variables, same defaults)."""
    registry = os.environ.get("SMOLTBOT_IMAGE_REGISTRY") or "localhost"
    version = os.environ.get("SMOLTBOT_VERSION") or workspace_version()
    return f"{registry}/smoltbot-{service}:{version}"


def ca_bundle() -> str | None:
    """The machine's CA bundle (it may hold a TLS-inspecting proxy's CA), if there is one."""
    for candidate in (
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


def ensure_tools() -> None:
    """Install podman, runc, debootstrap and catatonit with apt when one is missing."""
    missing = [pkg for cmd, pkg in APT_TOOLS.items() if shutil.which(cmd) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    subprocess.run([*apt, "update", "-q"], check=True, env=env)
    subprocess.run([*apt, "install", "-y", "-q", *missing], check=True, env=env)


def podman_env() -> dict[str, str]:
    """The environment for podman here: a containers.conf with runc and no default ulimits."""
    conf = cache_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(
    *args: str, check: bool = True, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "--runtime", "runc", *args],
        env=podman_env(),
        check=check,
        text=True,
        capture_output=capture,
    )


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def base_tarball() -> Path:
    return cache_dir() / "debian-bookworm-minbase.tar"


def ensure_base(*, rebuild: bool = False) -> None:
    """``BASE_IMAGE`` in podman: imported from the cached tarball, made first if missing."""
    tarball = base_tarball()
    if rebuild:
        tarball.unlink(missing_ok=True)
    elif image_exists(BASE_IMAGE) and tarball.exists():
        return
    if not tarball.exists():
        started = time.monotonic()
        print(f"debootstrap: building the base ({', '.join(BASE_PACKAGES)})", flush=True)
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="smoltbot-base-") as work:
            root = Path(work) / "root"
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    "bookworm",
                    str(root),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            partial = tarball.with_suffix(".tar.partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.replace(tarball)
        print(f"debootstrap: {time.monotonic() - started:.0f} s -> {tarball}", flush=True)
    podman("import", str(tarball), BASE_IMAGE, capture=True)
    print(f"imported {BASE_IMAGE} from {tarball}", flush=True)


def build(service: str, context: Path = ROOT) -> float:
    """Build one image from ``deploy/Containerfile``; return the seconds it took."""
    started = time.monotonic()
    args = [
        "build",
        "--network",
        "host",
        "--format",
        "docker",  # OCI images drop HEALTHCHECK
        "--ignorefile",
        str(IGNOREFILE),
        "--build-arg",
        f"BASE={BASE_IMAGE}",
        "--build-arg",
        f"SERVICE={service}",
        "-t",
        image_name(service),
        "-f",
        str(CONTAINERFILE),
    ]
    bundle = ca_bundle()
    if bundle:
        args += ["--volume", f"{bundle}:{bundle}:ro"]
        args += ["--build-arg", f"PIP_CERT={bundle}", "--build-arg", f"SSL_CERT_FILE={bundle}"]
    podman(*args, str(context))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make images", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--service", action="append", choices=IMAGES, help="build only this image (repeatable)"
    )
    parser.add_argument("--base-only", action="store_true", help="only make the base image")
    parser.add_argument(
        "--rebuild-base", action="store_true", help="run debootstrap again even if cached"
    )
    parser.add_argument(
        "--context", type=Path, default=ROOT, help="build context (default: this checkout)"
    )
    args = parser.parse_args(argv)
    ensure_tools()
    started = time.monotonic()
    ensure_base(rebuild=args.rebuild_base)
    if args.base_only:
        return 0
    timings: dict[str, float] = {}
    for service in args.service or IMAGES:
        try:
            timings[service] = build(service, args.context)
        except subprocess.CalledProcessError as exc:
            print(f"make images: building {image_name(service)} failed (exit {exc.returncode})")
            return 1
    for service, seconds in timings.items():
        print(f"{image_name(service):<48} {seconds:6.1f} s")
    print(f"images: {time.monotonic() - started:.1f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
