"""A small kustomize renderer for exactly the features deploy/ uses, so the deployment tests run on
a machine without kustomize (Debian's kubernetes-client is 1.20, whose embedded kustomize v2 does
not know `patches:`; PyPI has no kustomize). It is not a general kustomize: any field or patch kind
it does not implement is an error, never silently ignored. Where a real kustomize is installed
(`kustomize` or `kubectl kustomize`), test_deploy.py renders every overlay with both and requires
the same objects.

Implemented:
  resources        files (one or more YAML documents) and directories with a kustomization.yaml
  namespace        set on every namespaced object
  configMapGenerator / secretGenerator   `files` (ConfigMap) and `literals`, with kustomize's
                   content-hash name suffix, and references to them renamed in pod templates
  images           name → newName / newTag in pod templates
  patches          JSON 6902 operation lists (replace, add, remove) selected by kind and name
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
from pathlib import Path

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "configMapGenerator", "secretGenerator", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "PriorityClass", "IngressClass"}
NAMESPACED = {"ConfigMap", "Secret", "Service", "ServiceAccount", "Deployment", "StatefulSet", "DaemonSet", "Job",
              "CronJob", "Pod", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Role", "RoleBinding",
              "PersistentVolumeClaim", "Ingress"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    pass


def render(directory: str | os.PathLike) -> list[dict]:
    """Renders the kustomization in `directory`; returns its objects (generated names hashed)."""
    objects = _build(Path(directory).resolve())
    return [o["object"] for o in objects]


# --- one kustomization -------------------------------------------------------------------------

def _build(directory: Path) -> list[dict]:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    k = yaml.safe_load(path.read_text()) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields not implemented by kustomize_lite: {sorted(unknown)}")

    # Each entry: {"object": dict}, plus for generated objects "needs_hash", then "renamed_from".
    objects: list[dict] = []
    for entry in k.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            objects += _build(target)
        elif target.is_file():
            for document in yaml.safe_load_all(target.read_text()):
                if document is not None:
                    objects.append({"object": document})
        else:
            raise KustomizeError(f"{path}: resource {entry} does not exist")

    for generator in k.get("configMapGenerator", []):
        objects.append(_config_map(directory, path, generator))
    for generator in k.get("secretGenerator", []):
        objects.append(_secret(path, generator))

    for patch in k.get("patches", []):
        _apply_patch(path, patch, objects)
    if "namespace" in k:
        for o in objects:
            kind = o["object"]["kind"]
            if kind in NAMESPACED:
                o["object"].setdefault("metadata", {})["namespace"] = k["namespace"]
            elif kind not in CLUSTER_SCOPED:
                raise KustomizeError(f"{path}: kustomize_lite does not know whether {kind} is namespaced")
    for image in k.get("images", []):
        _set_image(path, image, objects)

    # Hash suffixes of this kustomization's generated objects, and the references to them.
    # (Renames from included kustomizations apply here too, as kustomize tracks them upwards.)
    for o in objects:
        if o.get("needs_hash"):
            obj = o["object"]
            o["renamed_from"] = obj["metadata"]["name"]
            obj["metadata"]["name"] = f"{o['renamed_from']}-{_hash(obj)}"
            o["needs_hash"] = False
    renames = {(o["object"]["kind"], o["renamed_from"]): o["object"]["metadata"]["name"] for o in objects if "renamed_from" in o}
    if renames:
        for o in objects:
            _rename_references(o["object"], renames)

    ids = [(o["object"]["kind"], o["object"]["metadata"].get("namespace"), o["object"]["metadata"]["name"]) for o in objects]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise KustomizeError(f"{path}: objects defined twice: {sorted(duplicates, key=str)}")
    return objects


# --- generators --------------------------------------------------------------------------------

def _check_generator(path: Path, generator: dict, allowed: set[str]) -> None:
    unknown = set(generator) - allowed
    if unknown:
        raise KustomizeError(f"{path}: generator fields not implemented by kustomize_lite: {sorted(unknown)}")


def _config_map(directory: Path, path: Path, generator: dict) -> dict:
    _check_generator(path, generator, {"name", "files", "literals"})
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, file = entry.rpartition("=") if "=" in entry else (os.path.basename(entry), "", entry)
        data[key] = (directory / file).read_text()
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
    return {"object": obj, "needs_hash": True}


def _secret(path: Path, generator: dict) -> dict:
    _check_generator(path, generator, {"name", "literals", "type"})
    data: dict[str, str] = {}
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = base64.b64encode(value.encode()).decode()
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]},
           "type": generator.get("type", "Opaque"), "data": data}
    return {"object": obj, "needs_hash": True}


def _go_json(value) -> str:
    """encoding/json.Marshal of maps of strings: sorted keys, no spaces, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if re.search(r"\\[bf]|\\u00[01]", text):
        raise KustomizeError("control characters in generated data: kustomize_lite does not reproduce Go's escaping of them")
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _hash(obj: dict) -> str:
    """kustomize v5's api/hasher: sha256 of the JSON of {kind, name, data[, type]}, first 10 hex
    digits with 0 1 3 a e replaced by g h k m t. The name is always "": kustomize looks it up as
    the single field "metadata/name", which never exists (checked against kubectl kustomize
    5.0 to 5.6: `a` with k=v gives a-bdg947hgcc, while `kubectl create configmap --append-hash`,
    which does hash the name, gives a-m959bm649k)."""
    if obj["kind"] == "ConfigMap":
        encoded = {"kind": "ConfigMap", "name": "", "data": obj.get("data", {})}
    else:
        encoded = {"kind": "Secret", "type": obj.get("type", ""), "name": "", "data": obj.get("data", {})}
    digest = hashlib.sha256(_go_json(encoded).encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# --- patches -----------------------------------------------------------------------------------

def _apply_patch(path: Path, patch: dict, objects: list[dict]) -> None:
    if set(patch) - {"target", "patch"} or "patch" not in patch:
        raise KustomizeError(f"{path}: only inline patches with a target are implemented: {patch}")
    target = patch.get("target") or {}
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"{path}: patch targets select by kind and name only: {target}")
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise KustomizeError(f"{path}: only JSON 6902 patches (a list of operations) are implemented")
    matched = 0
    for o in objects:
        obj = o["object"]
        if "kind" in target and obj["kind"] != target["kind"]:
            continue
        if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
            continue
        matched += 1
        for op in operations:
            _json_patch(path, obj, op)
    if matched == 0:
        raise KustomizeError(f"{path}: patch target {target} matches nothing")


def _pointer(path: Path, pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise KustomizeError(f"{path}: JSON pointer {pointer!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _json_patch(path: Path, obj: dict, op: dict) -> None:
    kind = op.get("op")
    if kind not in ("replace", "add", "remove"):
        raise KustomizeError(f"{path}: JSON patch op {kind!r} not implemented")
    *parents, last = _pointer(path, op["path"])
    node = obj
    for p in parents:
        try:
            node = node[int(p)] if isinstance(node, list) else node[p]
        except (KeyError, IndexError, ValueError):
            raise KustomizeError(f"{path}: {op['path']}: no {p!r} in {obj['kind']} {obj['metadata']['name']}") from None
    if isinstance(node, list):
        if kind == "add" and last == "-":
            node.append(copy.deepcopy(op["value"]))
            return
        index = int(last)
        if kind == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        elif index >= len(node):
            raise KustomizeError(f"{path}: {op['path']}: index out of range")
        elif kind == "replace":
            node[index] = copy.deepcopy(op["value"])
        else:
            del node[index]
        return
    if kind in ("replace", "remove") and last not in node:
        raise KustomizeError(f"{path}: {op['path']}: nothing to {kind} in {obj['kind']} {obj['metadata']['name']}")
    if kind == "remove":
        del node[last]
    else:
        node[last] = copy.deepcopy(op["value"])


# --- pod templates: images and references ------------------------------------------------------

def _pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] == "Pod":
        return [obj.get("spec", {})]
    if obj["kind"] in WORKLOADS:
        return [obj.get("spec", {}).get("template", {}).get("spec", {})]
    if obj["kind"] == "CronJob":
        return [obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    return []


def _containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec.get("containers", [])


def _set_image(path: Path, image: dict, objects: list[dict]) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise KustomizeError(f"{path}: images fields not implemented: {image}")
    if not all(isinstance(v, str) for v in image.values()):
        raise KustomizeError(f"{path}: quote the image fields (YAML would read 1.10 as the number 1.1): {image}")
    for o in objects:
        for spec in _pod_specs(o["object"]):
            for container in _containers(spec):
                match = re.fullmatch(r"(?P<name>[^@]+?)(?::(?P<tag>[^:/@]+))?(?P<digest>@.+)?", container["image"])
                if match and match["name"] == image["name"]:
                    name = image.get("newName", match["name"])
                    tag = image.get("newTag", match["tag"])
                    digest = "" if "newTag" in image else (match["digest"] or "")
                    container["image"] = name + (f":{tag}" if tag else "") + digest


def _rename_references(obj: dict, renames: dict[tuple[str, str], str]) -> None:
    def rename(holder: dict | None, key: str, kind: str) -> None:
        if holder and (kind, holder.get(key)) in renames:
            holder[key] = renames[(kind, holder[key])]

    for spec in _pod_specs(obj):
        for volume in spec.get("volumes", []):
            rename(volume.get("configMap"), "name", "ConfigMap")
            rename(volume.get("secret"), "secretName", "Secret")
            for source in (volume.get("projected") or {}).get("sources", []):
                rename(source.get("configMap"), "name", "ConfigMap")
                rename(source.get("secret"), "name", "Secret")
        for secret in spec.get("imagePullSecrets", []):
            rename(secret, "name", "Secret")
        for container in _containers(spec):
            for env in container.get("env", []):
                value_from = env.get("valueFrom") or {}
                rename(value_from.get("configMapKeyRef"), "name", "ConfigMap")
                rename(value_from.get("secretKeyRef"), "name", "Secret")
            for env_from in container.get("envFrom", []):
                rename(env_from.get("configMapRef"), "name", "ConfigMap")
                rename(env_from.get("secretRef"), "name", "Secret")


if __name__ == "__main__":
    import sys

    print(yaml.safe_dump_all(render(sys.argv[1]), sort_keys=False), end="")
