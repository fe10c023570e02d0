"""Checks of deploy/ that need no cluster: every overlay renders (kustomize_lite, and the real
kustomize where one is installed, with the same result), every object passes the Kubernetes
schemas (kubernetes-validate, offline, strict), and the manifests agree with the code: probe paths,
ports, flags and environment variables exist in the server, the topology ConfigMap passes
`vecshard topology validate`, StatefulSet pod names map to the topology's shards through the
PodIdentity rule, and the dev overlay's own container arguments start a working router and
shards on this machine (127.0.0.1 only).

The binary comes from $VECSHARD_BIN (make check-deploy sets it), else .build/debug/vecshard.

Over 500 lines on purpose: one file so that the overlays are rendered once (the cached helpers) and
every check of a manifest against the code shares them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import kustomize_lite  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
# Oldest and newest Kubernetes versions the manifests are checked against.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]


# --- helpers -----------------------------------------------------------------------------------

@cache
def rendered(overlay: str) -> tuple:
    return tuple(kustomize_lite.render(DEPLOY / "overlays" / overlay))


def objects(overlay: str, kind: str | None = None) -> list[dict]:
    return [o for o in rendered(overlay) if kind is None or o["kind"] == kind]


def one(overlay: str, kind: str, name: str | None = None, prefix: str | None = None) -> dict:
    found = [o for o in objects(overlay, kind)
             if (name is None or o["metadata"]["name"] == name) and (prefix is None or o["metadata"]["name"].startswith(prefix))]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name or prefix or ''}, found {len(found)}"
    return found[0]


def container(workload: dict) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def container_port(c: dict, port) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    for p in c.get("ports", []):
        if port in (p["containerPort"], p.get("name")):
            return p["containerPort"]
    raise AssertionError(f"port {port!r} is not a port of container {c['name']}")


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", selector)
    return all(labels.get(k) == v for k, v in match.items())


def pod_identity(pod_name: str) -> str | None:
    """PodIdentity.shardID(fromPodName:) of Sources/VecShardServer/AccessControl.swift: the name
    without its last "-<digits>"; nil without one. (test_dev_overlay_runs_locally checks that the
    real binary agrees, through the shard ids its shards report.)"""
    dash = pod_name.rfind("-")
    if dash <= 0:
        return None
    ordinal = pod_name[dash + 1:]
    if not ordinal or not all(ch.isdigit() for ch in ordinal):
        return None
    return pod_name[:dash]


def topology(overlay: str) -> tuple[dict, str, dict]:
    """(the router's ConfigMap, the key the router reads, the parsed topology)."""
    router = one(overlay, "Deployment", "vecshard-router")
    args = container(router)["args"]
    path = flag(args, "--topology")
    assert path, "the router needs --topology"
    mounts = {m["name"]: m for m in container(router)["volumeMounts"]}
    volumes = {v["name"]: v for v in router["spec"]["template"]["spec"]["volumes"]}
    for name, mount in mounts.items():
        if os.path.dirname(path) == mount["mountPath"].rstrip("/") and "configMap" in volumes[name]:
            assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
            config_map = one(overlay, "ConfigMap", volumes[name]["configMap"]["name"])
            key = os.path.basename(path)
            assert key in config_map["data"], f"ConfigMap {config_map['metadata']['name']} has no key {key}"
            return config_map, key, yaml.safe_load(config_map["data"][key])
    raise AssertionError(f"{overlay}: --topology {path} is not in a mounted ConfigMap")


@cache
def vecshard_binary() -> str:
    candidate = os.environ.get("VECSHARD_BIN") or str(REPO / ".build" / "debug" / "vecshard")
    if not os.access(candidate, os.X_OK):
        pytest.fail(f"no vecshard binary at {candidate}: run `make check-deploy`, or `swift build --product vecshard` "
                    "and set VECSHARD_BIN")
    return candidate


def real_kustomize() -> tuple[list[str] | None, str]:
    """A kustomize v5 (standalone, or inside kubectl 1.27+), and what was found."""
    candidates = []
    if shutil.which("kustomize"):
        version = subprocess.run(["kustomize", "version"], capture_output=True, text=True).stdout.strip()
        candidates.append((["kustomize", "build"], version))
    if shutil.which("kubectl"):
        output = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True).stdout
        try:
            version = json.loads(output).get("kustomizeVersion", "")
        except json.JSONDecodeError:
            version = ""  # kubectl before 1.24 (Debian's 1.20 embeds kustomize v2, which cannot render these)
        candidates.append((["kubectl", "kustomize"], version))
    for command, version in candidates:
        if re.match(r"v?([5-9]|\d\d)\.", version):
            return command, version
    return None, ", ".join(f"{c[0]} {v or 'of unknown version'}" for c, v in candidates) or "none"


def object_id(o: dict) -> tuple:
    return (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])


# --- rendering and schemas ---------------------------------------------------------------------

def test_overlays_exist():
    assert {"dev", "production-example"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renders_like_real_kustomize(overlay):
    command, found = real_kustomize()
    if command is None:
        pytest.skip(f"no kustomize v5 here (found: {found}): kustomize_lite's output is not compared")
    output = subprocess.run(command + [str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, check=True).stdout
    real = {object_id(o): o for o in yaml.safe_load_all(output) if o}
    mine = {object_id(o): o for o in rendered(overlay)}
    assert sorted(mine, key=str) == sorted(real, key=str)
    for key in real:
        assert mine[key] == real[key], f"{key} differs between kustomize_lite and {' '.join(command)}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_pass_the_kubernetes_schemas(overlay, version):
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    failures = []
    for o in rendered(overlay):
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except ValidationError as error:
            failures.append(f"{o['kind']} {o['metadata']['name']}: {error.message} at {'/'.join(map(str, error.path))}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_names_are_unique_and_valid(overlay):
    ids = [object_id(o) for o in rendered(overlay)]
    assert len(ids) == len(set(ids))
    for o in rendered(overlay):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", o["metadata"]["name"]), o["metadata"]["name"]
    for s in objects(overlay, "StatefulSet"):
        # The controller-revision-hash label (name + "-" + 10 characters) must fit in 63.
        assert len(s["metadata"]["name"]) <= 52, s["metadata"]["name"]
    namespaces = {o["metadata"]["name"] for o in objects(overlay, "Namespace")}
    assert len(namespaces) == 1
    assert {o["metadata"].get("namespace") for o in rendered(overlay) if o["kind"] != "Namespace"} == namespaces


# --- the image -----------------------------------------------------------------------------------

def containerfile_stages() -> list[dict]:
    text = (DEPLOY / "Containerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    stages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            stages.append({"image": words[0], "name": words[2] if len(words) == 3 and words[1].upper() == "AS" else None,
                           "instructions": []})
        else:
            stages[-1]["instructions"].append((instruction, rest.strip()))
    return stages


def apt_installs(stage: dict) -> set[str]:
    packages = set()
    for instruction, rest in stage["instructions"]:
        if instruction == "RUN":
            for command in re.split(r"&&|;", rest):
                words = command.split()
                if words[:2] == ["apt-get", "install"]:
                    packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def bootstrap_build_packages() -> set[str]:
    text = (REPO / "scripts" / "bootstrap.sh").read_text()
    packages = set(re.search(r"^packages=\(([^)]*)\)", text, re.M).group(1).split())
    # The rest (curl, openssl, python3, ...) are for the tests, not the build.
    return {p for p in packages if p.endswith("-dev") or p == "pkg-config"}


def test_containerfile():
    build, runtime = containerfile_stages()
    swift = re.fullmatch(r"swift:(\d+)\.(\d+)(?:\.\d+)?-bookworm", build["image"])
    assert swift, f"build stage: the official Swift image on Debian 12, not {build['image']}"
    tools = re.search(r"swift-tools-version:\s*(\d+)\.(\d+)", (REPO / "Package.swift").read_text())
    assert tuple(map(int, swift.groups())) >= tuple(map(int, tools.groups())), "the toolchain is older than Package.swift needs"
    assert runtime["image"] == "debian:bookworm-slim", "runtime stage: the Debian release the build stage is on, slim"

    assert bootstrap_build_packages() <= apt_installs(build), "the build stage installs what scripts/bootstrap.sh installs for building"
    runs = " ".join(rest for instruction, rest in build["instructions"] if instruction == "RUN")
    assert re.search(r"swift build -c release --product vecshard\b", runs)

    installed = apt_installs(runtime)
    assert {"libnghttp2-14", "libssl3"} <= installed
    assert not {p for p in installed if p.endswith("-dev")}, "no development packages at run time"
    runtime_runs = [rest for instruction, rest in runtime["instructions"] if instruction == "RUN"]
    assert any("--no-install-recommends" in r for r in runtime_runs)

    copies = [rest for instruction, rest in runtime["instructions"] if instruction == "COPY"]
    assert len(copies) == 1 and copies[0].startswith(f"--from={build['name']} "), "the runtime stage copies the binary only"
    source, destination = copies[0].split()[1:]
    assert os.path.basename(source) == "vecshard" and destination == "/usr/local/bin/vecshard"

    users = [rest for instruction, rest in runtime["instructions"] if instruction == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be numeric and not root (runAsNonRoot checks it)"
    for overlay in OVERLAYS:
        for workload in objects(overlay, "Deployment") + objects(overlay, "StatefulSet"):
            assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)

    entrypoints = [rest for instruction, rest in runtime["instructions"] if instruction == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["/usr/local/bin/vecshard"]], "exec-form ENTRYPOINT: the binary"
    # The manifests' preStop hook runs /bin/sleep, which Debian's coreutils (essential) provides.


# --- the manifests against the code ------------------------------------------------------------

def serve_flags() -> set[str]:
    source = (REPO / "Sources" / "vecshard" / "ServeCommand.swift").read_text()
    flags = set()
    for match in re.finditer(r"@(?:Option|Flag)\((.*?)\)\s*var\s+(\w+)", source):
        custom = re.search(r'customLong\("([^"]+)"\)', match.group(1))
        flags.add("--" + (custom.group(1) if custom else re.sub(r"(?<=[a-z])([A-Z])", r"-\1", match.group(2)).lower()))
    assert {"--host", "--port", "--role", "--data-dir"} <= flags, f"could not read the flags of ServeCommand.swift: {flags}"
    return flags


def probe_routes() -> set[str]:
    source = (REPO / "Sources" / "VecShardServer" / "ServiceRoutes.swift").read_text()
    return set(re.findall(r'router\.add\("GET",\s*"(/[^"]*)"', source))


def workloads(overlay: str) -> list[dict]:
    return objects(overlay, "Deployment") + objects(overlay, "StatefulSet")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_arguments_exist_and_probes_hit_the_served_port(overlay):
    flags = serve_flags()
    routes = probe_routes()
    assert {"/healthz", "/readyz"} <= routes
    for workload in workloads(overlay):
        c = container(workload)
        args = c["args"]
        assert args[0] == "serve"
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg in flags, f"{workload['metadata']['name']}: vecshard serve has no {arg}"
        assert flag(args, "--host") == "0.0.0.0"
        port = int(flag(args, "--port"))
        assert [p["containerPort"] for p in c["ports"]] == [port]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] in routes
            assert container_port(c, c[probe]["httpGet"]["port"]) == port, f"{probe} of {workload['metadata']['name']}"
        source = (REPO / "Sources" / "vecshard" / "ServeCommand.swift").read_text()
        for env in c.get("env", []):
            if env["name"].startswith("VECSHARD_"):
                assert f'environment["{env["name"]}"]' in source, f"the server does not read {env['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_the_pods(overlay):
    for service in objects(overlay, "Service"):
        pods = [w for w in workloads(overlay) if selects(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert pods, f"Service {service['metadata']['name']} selects no pods"
        for w in pods:
            for p in service["spec"]["ports"]:
                container_port(container(w), p["targetPort"])
    router_service = one(overlay, "Service", "vecshard")
    assert [w["metadata"]["name"] for w in workloads(overlay)
            if selects(router_service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])] == ["vecshard-router"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topology_passes_vecshard_topology_validate(overlay, tmp_path):
    config_map, key, _ = topology(overlay)
    path = tmp_path / key
    path.write_text(config_map["data"][key])
    result = subprocess.run([vecshard_binary(), "topology", "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_statefulsets_are_the_topology(overlay):
    """Each StatefulSet is one shard: its pods' names map (PodIdentity) to a shard of the topology,
    whose replicas are exactly those pods' DNS names through the governing headless Service, and
    every topology address is such a pod."""
    _, _, layout = topology(overlay)
    shards = {s["name"]: (g["name"], s["replicas"]) for g in layout["groups"] for s in g["shards"]}
    headless = {s["metadata"]["name"]: s for s in objects(overlay, "Service") if s["spec"].get("clusterIP") == "None"}
    pod_addresses = set()
    for sts in objects(overlay, "StatefulSet"):
        name = sts["metadata"]["name"]
        c = container(sts)
        args = c["args"]
        assert flag(args, "--role") == "shard"
        assert flag(args, "--shard-id") is None, "the shard id comes from the pod name"
        assert flag(args, "--shard-id-from-pod-name") == "$(POD_NAME)"
        pod_name_env = [e for e in c["env"] if e["name"] == "POD_NAME"]
        assert pod_name_env and pod_name_env[0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

        service = headless.get(sts["spec"]["serviceName"])
        assert service, f"{name}: serviceName {sts['spec']['serviceName']} is not a headless Service"
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert selects(service["spec"]["selector"], labels)
        port = int(flag(args, "--port"))
        assert port in [container_port(c, p["targetPort"]) for p in service["spec"]["ports"]]

        pods = [f"{name}-{ordinal}" for ordinal in range(sts["spec"]["replicas"])]
        ids = {pod_identity(p) for p in pods}
        assert ids == {name}, f"pods {pods} map to {ids}, not to one shard"
        assert name in shards, f"StatefulSet {name} is not a shard of the topology"
        group, replicas = shards[name]
        expected = [f"{p}.{service['metadata']['name']}:{port}" for p in pods]
        assert replicas == expected, f"shard {name}: topology lists {replicas}, the StatefulSet has {expected}"
        assert sts["metadata"]["labels"]["vecshard.io/group"] == group == labels["vecshard.io/group"]
        assert sts["metadata"]["labels"]["vecshard.io/shard"] == name == labels["vecshard.io/shard"]
        pod_addresses |= set(expected)
    topology_addresses = {a for _, replicas in shards.values() for a in replicas}
    assert topology_addresses == pod_addresses, f"topology addresses with no pod: {sorted(topology_addresses - pod_addresses)}"
    assert set(shards) == {s["metadata"]["name"] for s in objects(overlay, "StatefulSet")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_spread_and_groups_have_budgets(overlay):
    statefulsets = objects(overlay, "StatefulSet")
    for sts in statefulsets:
        labels = sts["spec"]["template"]["metadata"]["labels"]
        # Selectors are disjoint: a StatefulSet selects its own pods only.
        for other in statefulsets:
            if other is not sts:
                assert not selects(sts["spec"]["selector"], other["spec"]["template"]["metadata"]["labels"])
        terms = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert any(t["topologyKey"] == "kubernetes.io/hostname" and selects(t["labelSelector"], labels)
                   and not any(selects(t["labelSelector"], o["spec"]["template"]["metadata"]["labels"]) for o in statefulsets if o is not sts)
                   for t in terms), f"{sts['metadata']['name']}: replicas of one shard must be kept on different nodes"
        claims = sts["spec"]["volumeClaimTemplates"]
        mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
        assert [t["metadata"]["name"] for t in claims] == ["data"]
        assert mounts["data"] == flag(container(sts)["args"], "--data-dir"), "the data directory is the persistent volume"
    groups = {s["spec"]["template"]["metadata"]["labels"]["vecshard.io/group"] for s in statefulsets}
    _, _, layout = topology(overlay)
    assert groups == {g["name"] for g in layout["groups"]}
    budgets = objects(overlay, "PodDisruptionBudget")
    for group in groups:
        pods = [s for s in statefulsets if s["spec"]["template"]["metadata"]["labels"]["vecshard.io/group"] == group]
        covering = [b for b in budgets if any(selects(b["spec"]["selector"], p["spec"]["template"]["metadata"]["labels"]) for p in pods)]
        assert len(covering) == 1, f"group {group}: one PodDisruptionBudget expected, found {len(covering)}"
        assert all(selects(covering[0]["spec"]["selector"], p["spec"]["template"]["metadata"]["labels"]) for p in pods)
        assert covering[0]["spec"].get("maxUnavailable") == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_router_scales_and_reads_keys_from_a_secret(overlay):
    router = one(overlay, "Deployment", "vecshard-router")
    hpa = one(overlay, "HorizontalPodAutoscaler", "vecshard-router")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vecshard-router"}
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    assert "replicas" not in router["spec"], "the autoscaler owns the router's replica count"
    assert any(selects(b["spec"]["selector"], router["spec"]["template"]["metadata"]["labels"])
               for b in objects(overlay, "PodDisruptionBudget"))
    env = {e["name"]: e for e in container(router)["env"]}
    api_key = env["VECSHARD_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert not api_key.get("optional"), "without its key the router must not start open"
    secrets = [s for s in objects(overlay, "Secret") if s["metadata"]["name"] == api_key["name"]]
    if secrets:  # generated in the overlay (dev); otherwise created by the operator (README)
        assert api_key["key"] in secrets[0]["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_resources_and_graceful_drain(overlay):
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        c = container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        security = c["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"] and not security["capabilities"].get("add")
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: resources.{kind}"
        # The root filesystem is read-only: the data directory and /tmp must be volumes.
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        data_dir = flag(c["args"], "--data-dir")
        writable = [p for p, m in mounts.items() if not m.get("readOnly")
                    and (m["name"] not in volumes or "emptyDir" in volumes[m["name"]])]  # emptyDir or a claim template
        assert any(data_dir == p or data_dir.startswith(p.rstrip("/") + "/") for p in writable), f"{name}: --data-dir {data_dir} is not writable"
        assert "/tmp" in writable
        # SIGTERM: the preStop sleep, then --shutdown-grace-seconds of draining, must fit.
        sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "/bin/sleep"
        drain = int(flag(c["args"], "--shutdown-grace-seconds"))
        assert pod["terminationGracePeriodSeconds"] >= int(sleep[1]) + drain + 5, f"{name}: terminationGracePeriodSeconds too short"
    for sts in objects(overlay, "StatefulSet"):
        startup = container(sts)["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800, "WAL recovery may take long: 30 minutes at least"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_routers_reach_shards(overlay):
    policies = objects(overlay, "NetworkPolicy")
    router_labels = one(overlay, "Deployment", "vecshard-router")["spec"]["template"]["metadata"]["labels"]
    for sts in objects(overlay, "StatefulSet"):
        labels = sts["spec"]["template"]["metadata"]["labels"]
        port = int(flag(container(sts)["args"], "--port"))
        covering = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert covering and all("Ingress" in p["spec"]["policyTypes"] for p in covering)
        for policy in covering:
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("from"), "an ingress rule without `from` admits everyone"
                for peer in rule["from"]:
                    assert set(peer) == {"podSelector"}, "only pods of the namespace, selected by label"
                    assert selects(peer["podSelector"], router_labels)
                    assert not selects(peer["podSelector"], labels)
                assert [p["port"] for p in rule["ports"]] == [port]


# --- the dev overlay's arguments, run here -----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, port: int, path: str, body=None, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def start(binary: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "wb") as stderr:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen([binary] + args, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    process.log = log
    return process


def wait_ready(process: subprocess.Popen, port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}: {process.log.read_text()[-2000:]}"
        try:
            if http("GET", port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"port {port} not ready after {timeout} s")


def local_args(c: dict, env: dict[str, str], port: int, data_dir: Path, replace: dict[str, str] | None = None) -> list[str]:
    """The container's own args, with $(VAR) expanded as the kubelet does, on 127.0.0.1:port."""
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    overrides = {"--host": "127.0.0.1", "--port": str(port), "--data-dir": str(data_dir), **(replace or {})}
    for name, value in overrides.items():
        args[args.index(name) + 1] = value
    return args


def secret_values(overlay, c) -> dict[str, str]:
    """The container's environment variables that come from the overlay's Secrets, decoded."""
    values = {}
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = one(overlay, "Secret", ref["name"])
            values[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return values


def test_dev_overlay_runs_locally(tmp_path):
    """Starts every pod of the dev overlay as a local process with the manifests' own arguments and
    environment (pod names from the downward API, keys from the Secret), on 127.0.0.1 ports instead
    of pod DNS names, then checks the probes, the shard ids the shards report, a write and a search
    through the router, the API key, and that SIGTERM drains and exits 0."""
    overlay = "dev"
    binary = vecshard_binary()
    processes: list[subprocess.Popen] = []
    try:
        addresses: dict[str, str] = {}
        shard_processes = []
        for sts in objects(overlay, "StatefulSet"):
            c = container(sts)
            for ordinal in range(sts["spec"]["replicas"]):
                pod = f"{sts['metadata']['name']}-{ordinal}"
                env = {e["name"]: pod for e in c["env"] if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"}
                secret_env = secret_values(overlay, c)
                port = free_port()
                args = local_args(c, env, port, tmp_path / pod)
                processes.append(start(binary, args, tmp_path / f"{pod}.log", env={**os.environ, **secret_env}))
                shard_processes.append((processes[-1], port, c))
                addresses[f"{pod}.{sts['spec']['serviceName']}:{flag(c['args'], '--port')}"] = f"127.0.0.1:{port}"
        for process, port, c in shard_processes:
            wait_ready(process, port, c["readinessProbe"]["httpGet"]["path"])
            assert http("GET", port, c["livenessProbe"]["httpGet"]["path"])[0] == 200

        config_map, key, _ = topology(overlay)
        text = config_map["data"][key]
        for address, local in addresses.items():
            assert address in text
            text = text.replace(address, local)
        (tmp_path / key).write_text(text)
        router = one(overlay, "Deployment", "vecshard-router")
        c = container(router)
        secret_env = secret_values(overlay, c)
        router_port = free_port()
        args = local_args(c, {}, router_port, tmp_path / "router", {"--topology": str(tmp_path / key)})
        processes.append(start(binary, args, tmp_path / "router.log", env={**os.environ, **secret_env}))
        wait_ready(processes[-1], router_port, c["readinessProbe"]["httpGet"]["path"])

        write_key, read_key = secret_env["VECSHARD_API_KEY"], secret_env["VECSHARD_READ_ONLY_API_KEY"]
        assert http("GET", router_port, "/v1/collections")[0] == 401
        status, body = http("GET", router_port, "/admin/shards", key=write_key)
        assert status == 200, body
        # The shard ids the real binary derived from the pod names are the topology's shard names.
        assert sorted(s["name"] for s in body["shards"]) == sorted(s["metadata"]["name"] for s in objects(overlay, "StatefulSet"))

        status, body = http("PUT", router_port, "/v1/collections/docs", {"dimension": 2, "metric": "l2", "index": {"type": "flat"}}, key=write_key)
        assert status in (200, 201), body
        points = [{"id": f"p{i}", "vector": [float(i), 0.0], "metadata": {"n": i}} for i in range(20)]
        assert http("POST", router_port, "/v1/collections/docs/points", {"points": points}, key=read_key)[0] == 403
        status, body = http("POST", router_port, "/v1/collections/docs/points", {"points": points}, key=write_key)
        assert status == 200, body
        status, body = http("POST", router_port, "/v1/collections/docs/search", {"vector": [3.1, 0.0], "k": 3}, key=read_key)
        assert status == 200, body
        assert [r["id"] for r in body["results"]] == ["p3", "p4", "p2"]
        assert body["shards"] == {"asked": len(shard_processes), "answered": len(shard_processes)}
        status, body = http("GET", router_port, "/admin/shards", key=write_key)
        assert all(s["points"] > 0 for s in body["shards"]), f"every shard holds some of the 20 points: {body}"
    finally:
        # SIGTERM as the kubelet sends it: every process drains and exits 0 within its grace period.
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in reversed(processes):
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append("killed")
    assert codes == [0] * len(processes), f"exit codes after SIGTERM: {codes}"
