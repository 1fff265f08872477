#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the samples
(tests/samples/) and the examples (examples/). Re-run after adding samples:  python3 fuzz/seeds.py
(needs PyYAML; the seeds are committed, so fuzzing itself does not)."""

import glob
import json
import os
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# tests/samples/ is the repository's verbatim copy of shared/samples/.
SAMPLES = sorted(glob.glob(os.path.join(ROOT, "tests", "samples", "*.yaml"))) + sorted(
    glob.glob(os.path.join(ROOT, "examples", "*.yaml"))
)
MAX_SEED = 64 * 1024
GVK = {"group": "roost.birb.party", "version": "v1alpha1", "kind": "ManagedRoost"}
GVR = {"group": "roost.birb.party", "version": "v1alpha1", "resource": "managedroosts"}


def out_dir(target):
    path = os.path.join(HERE, "corpus", target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(directory, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) >= MAX_SEED:
        print(f"skipped {name}: {len(data)} bytes", file=sys.stderr)
        return
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def as_json(value):
    # PyYAML reads YAML 1.1 (dates, octal); anything not JSON becomes a string.
    return json.dumps(value, default=str, ensure_ascii=False)


def documents():
    """(stem, index, document) for every document of every sample."""
    for path in SAMPLES:
        stem = os.path.splitext(os.path.basename(path))[0]
        if "examples" in path:
            stem = "example-" + stem
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is not None:
                    yield stem, i, doc


def review(uid, operation, obj=None, old=None, kind=GVK, sub_resource=None, name=None):
    request = {
        "uid": uid,
        "kind": kind,
        "resource": GVR,
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "dryRun": False,
    }
    if name is not None:
        request["name"] = name
        request["namespace"] = "default"
    if sub_resource:
        request["subResource"] = sub_resource
    if obj is not None:
        request["object"] = obj
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def scalars(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            scalars(v, out)
    elif isinstance(value, list):
        for v in value:
            scalars(v, out)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if "\n" not in text and len(text) <= 80:
            out.add(text)


CRON_SEEDS = ["0 2 * * *", "*/15 * * * *", "0 0 1 1 *", "0 9-17 * * MON-FRI", "0 25 * * *", "@daily",
              "0 0 * * 7", "5,10 1 * JAN *", "0 2 * *", "0 0 L * *"]

PARSER_SEEDS = {
    "durations": ["0", "1h30m", "-1.5h", "300ms", "1µs", "1μs", "2h45m0.5s", "9223372036854775807ns",
                  "-2562047h47m16.854775808s", "2562047h47m16.854775807s", ".5s", "1.s", "+3m", "1d", "30 seconds"],
    "go-durations": ["5.6s", "10.5s4m", "-2m3.4s", "1h2m3s4ms5us6ns", "39h9m14.425s", "0.3333333333333333333h",
                     "9007199254740993ns", "9223372036854775.807us", "-9223372036854.775808ms",
                     "-2562047h47m16.854775808s", "0.830103483285477580700h", "9223372036854775808ns"],
    "quantities": ["1", "4Gi", "512Mi", "100m", "1.5", ".5", "2k", "1e3", "1E-3", "+1", "-1", "80%", "12.5%",
                   "100%", "0.5%", "1Kii", "1K"],
    "versions": ["1.2.3", "v1.2.3", "=1.2.3", "^1.2", ">=1.0 <2.0", "1.2.x", "*", "~1.2.3", ">= 1.0, < 2.0",
                 "1.0 - 2.0", "1.2.3 || 2.x", "!=1.2.3", "latest", "1.2.3-rc.1+build.5", ""],
}


def differential_probes(roost):
    """(name, AdmissionReview JSON text) probing where YAML and JSON could differ."""
    def text(spec):
        obj = {"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
               "metadata": {"name": "probe", "namespace": "default"}, "spec": spec}
        return as_json(review("probe", "CREATE", obj, name="probe"))

    spec = roost.get("spec") or {}
    chars = {"nel": "\u0085", "line-separator": "\u2028", "del": "\u007f", "bom": "\ufeff", "c1": "\u0080",
             "tab": "\t", "astral": "\U0001F600", "nul": "\u0000", "cr": "\r", "crlf": "\r\n"}
    for name, ch in chars.items():
        probe = json.loads(json.dumps(spec))
        probe.setdefault("chart", {})["version"] = "1.2.3" + ch
        probe["chart"]["name"] = "we" + ch + "b"
        yield name, text(probe)
    for name, number in {"exponent": "1e20", "big-float": "1e300", "u64-max": "18446744073709551615",
                         "i64-min": "-9223372036854775808", "negative-zero": "-0.0", "subnormal": "5e-324"}.items():
        probe = json.loads(json.dumps(spec))
        probe["healthChecks"] = [{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 1},
                                  "failureThreshold": "NUMBER"}]
        yield "number-" + name, text(probe).replace('"NUMBER"', number)
    deep = {"a": "x"}
    for _ in range(120):
        deep = {"a": deep}
    probe = json.loads(json.dumps(spec))
    probe.setdefault("chart", {})["values"] = {"inline": "x", "deep": deep}
    yield "deep-nesting", text(probe)
    probe = json.loads(json.dumps(spec))
    probe["<<"] = {"chart": {"name": "merged"}}
    yield "merge-key", text(probe)
    probe = json.loads(json.dumps(spec))
    probe["tenancy"] = {"tenantId": "yes", "rbac": {"enabled": True}}
    probe.setdefault("chart", {})["version"] = "0o17"
    yield "yaml11-words", text(probe)


def main():
    docs = list(documents())
    roosts = [(s, i, d) for s, i, d in docs if isinstance(d, dict) and d.get("kind") == "ManagedRoost"]

    target = out_dir("validate_documents")
    for path in SAMPLES:
        name = os.path.basename(path)
        if "examples" in path:
            name = "example-" + name
        with open(path, "rb") as f:
            write(target, name, f.read())
    for stem, i, doc in roosts[:8]:
        write(target, f"{stem}-{i}.json", as_json(doc))
    write(target, "list.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                "items": [d for _, _, d in roosts[:2]]}))
    write(target, "empty-docs.yaml", "---\n---\n...\n")
    write(target, "other-api-version.yaml",
          "apiVersion: roost.birb.party/v1beta9\nkind: ManagedRoost\nmetadata: {name: x}\nspec: {}\n")

    target = out_dir("defaults_idempotent")
    for stem, i, doc in roosts:
        write(target, f"{stem}-{i}.json", as_json(doc))
    write(target, "null-spec.json", '{"spec": null, "metadata": ""}')

    target = out_dir("admission_review")
    for n, (stem, i, doc) in enumerate(roosts):
        name = (doc.get("metadata") or {}).get("name")
        write(target, f"{stem}-{i}-create.json", as_json(review(f"seed-{n}-c", "CREATE", doc, name=name)))
        if n % 4 == 0:
            write(target, f"{stem}-{i}-update.json",
                  as_json(review(f"seed-{n}-u", "UPDATE", doc, old=doc, name=name)))
    first = roosts[0][2]
    write(target, "delete.json", as_json(review("seed-d", "DELETE", old=first)))
    write(target, "status-subresource.json",
          as_json(review("seed-s", "UPDATE", first, old=first, sub_resource="status")))
    write(target, "foreign-kind.json",
          as_json(review("seed-f", "CREATE", {"kind": "Pod"}, kind={"group": "", "version": "v1", "kind": "Pod"})))
    write(target, "no-object.json", as_json(review("seed-n", "CREATE")))
    write(target, "update-no-old.json", as_json(review("seed-o", "UPDATE", first)))
    write(target, "wrong-api-version.json",
          '{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u"}}')
    write(target, "truncated.json", '{"request": {"uid": "abc-123", "object": [[[[')

    # JSON the offline (YAML) reader could read differently from serde_json:
    # characters YAML 1.1 treats specially, number forms, deep nesting.
    for name, text in differential_probes(first):
        write(target, f"yaml-json-{name}.json", text)

    target = out_dir("parsers")
    values = set()
    for _, _, doc in docs:
        scalars(doc, values)
    values = sorted(values)
    for n in range(0, len(values), 40):
        write(target, f"samples-{n // 40:02}.txt", "\n".join(values[n:n + 40]))
    for name, lines in PARSER_SEEDS.items():
        write(target, f"{name}.txt", "\n".join(lines))

    # Conversion: a first byte choosing the version when the object names
    # none, then the object; the samples in both versions, and leaves
    # v1beta1 types as strings holding other JSON.
    target = out_dir("conversion")
    for stem, i, doc in roosts:
        write(target, f"{stem}-{i}.json", b"\x00" + as_json(doc).encode())
        beta = dict(doc, apiVersion="roost.birb.party/v1beta1")
        write(target, f"{stem}-{i}-v1beta1.json", b"\x01" + as_json(beta).encode())
    leaves = {"healthChecks": [{"name": "h", "type": "grpc", "interval": 30, "timeout": "5s",
                                "grpc": {"host": "h", "port": 1, "retryPolicy": {"multiplier": 1.5}}}],
              "observability": {"tracing": {"samplingRate": {"a": [1, True]}}},
              "tenancy": {"resourceQuota": {"hard": {"pods": 10, "a/b~c": "1"}}},
              "chart": {"repository": {"url": "https://x", "auth": {"password": "p", "token": "t"}}}}
    write(target, "leaves.json", b"\x00" + as_json({"metadata": {"name": "l"}, "spec": leaves}).encode())
    forged = {"metadata": {"name": "f", "annotations": {"roost.birb.party/conversion-data":
              '{"numbers":["/chart/name","/healthChecks/0/interval"],"json":["/healthChecks/0/timeout"]}'}},
              "spec": {"chart": {"name": "12"}, "healthChecks": [{"interval": "1.5", "timeout": "[1]"}]}}
    write(target, "forged-annotation.json", b"\x01" + as_json(forged).encode())

    # Cron has a target of its own: the cron library's parser is slow.
    target = out_dir("cron")
    write(target, "cron.txt", "\n".join(CRON_SEEDS))
    write(target, "samples.txt", "\n".join(v for v in values if len(v.split()) == 5))


if __name__ == "__main__":
    main()
