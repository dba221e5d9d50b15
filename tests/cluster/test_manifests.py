"""Cluster manifests and the Docker image: what can be checked without a cloud or Docker."""

import importlib
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "cluster" / "manifests"
DOCKERFILE = REPO / "docker" / "Dockerfile"


def dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(d).name.lower(): Requirement(d) for d in project["dependencies"]}


def image_tag() -> str:
    """The image the docker README builds."""
    m = re.search(r"docker build -f docker/Dockerfile -t (\S+) \.", (REPO / "docker" / "README.md").read_text())
    assert m, "docker/README.md has no build command"
    return m.group(1)


def test_cluster_yaml_validates_against_rays_schema():
    config = yaml.safe_load((MANIFESTS / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))  # what `ray up` does: defaults filled in, then checked
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert any(t["resources"].get("GPU", 0) >= 1 for t in types.values())  # learner nodes
    assert any(n != config["head_node_type"] and "GPU" not in t["resources"] for n, t in types.items())
    assert config["docker"]["image"] == image_tag()
    start = " ".join(config["head_start_ray_commands"] + config["worker_start_ray_commands"])
    assert start.count("RAY_AUTH_MODE=token") == 2 and "--dashboard-host=127.0.0.1" in start


def test_rayjob_runs_the_training_entrypoint_on_the_project_image():
    docs = list(yaml.safe_load_all((MANIFESTS / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "-m", "cluster.train"]
    from cluster.config import load_config
    from cluster.train import build_parser, config_from_args

    args = build_parser().parse_args(argv[3:])
    assert (REPO / args.config).exists()
    cfg = config_from_args(args)  # the preset loads and the flags apply
    assert cfg.run.out == "/mnt/runs/multinode" and cfg.run.num_workers > 1
    assert load_config(REPO / args.config).policy.preset == "full"
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__ and cluster["authOptions"]["mode"] == "token"
    containers = [c for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
                  for c in g["template"]["spec"]["containers"]]
    assert {c["image"] for c in containers} == {image_tag()}
    gpu_groups = [g for g in cluster["workerGroupSpecs"]
                  if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
    assert gpu_groups and len(cluster["workerGroupSpecs"]) >= 2
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")["metadata"]["name"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert head["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"] == "/home/ray/webshop-rl"


def test_dockerfile_base_matches_the_pinned_ray_and_python():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-gpu", base)
    assert m, base
    assert m.group(1) == ray.__version__
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires_python).contains(f"{m.group(2)}.{m.group(3)}")
    assert dependencies()["ray"].specifier.contains(m.group(1))
    assert {"serve"} <= dependencies()["ray"].extras
    torch_pin = re.search(r'"torch==([\d.]+)"', text).group(1)
    assert dependencies()["torch"].specifier.contains(torch_pin)


def test_dockerfile_copies_files_that_exist():
    text = DOCKERFILE.read_text()
    copied = []
    for line in text.splitlines():
        if line.startswith("COPY"):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            copied += parts[:-1]  # the last one is the destination
    assert copied and all((REPO / p).exists() for p in copied), [p for p in copied if not (REPO / p).exists()]
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for pattern in packages["find"]["include"]:  # every package the distribution ships is copied
        assert pattern.rstrip("*") in copied
    ignored = (REPO / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and "runs" in ignored


def test_runtime_env_installs_the_projects_dependencies():
    env = yaml.safe_load((MANIFESTS / "runtime_env.yaml").read_text())
    assert env["working_dir"] == "."
    listed = {Requirement(p).name.lower(): Requirement(p) for p in env["pip"]}
    wanted = {n: r for n, r in dependencies().items() if n != "ray"}  # the cluster's image has Ray
    assert set(listed) == set(wanted)
    for name, req in wanted.items():
        assert listed[name].specifier == req.specifier, name


def serve_config() -> dict:
    return yaml.safe_load((MANIFESTS / "serve_config.yaml").read_text())


def test_serve_config_validates_with_serves_schema_and_the_app_builder():
    from ray.serve.schema import ServeDeploySchema

    from cluster.serve.app import APP_NAME, PolicyServer, PolicyUserConfig, ServeArgs, app

    config = ServeDeploySchema.model_validate(serve_config())  # what `serve deploy` checks first
    (application,) = config.applications
    assert (application.name, application.route_prefix) == (APP_NAME, "/")
    module, attr = application.import_path.split(":")
    assert getattr(importlib.import_module(module), attr) is app
    args = ServeArgs.model_validate(application.args)
    (policy,) = application.deployments
    assert policy.name == PolicyServer.name
    auto = policy.autoscaling_config
    assert policy.num_replicas == "auto" and policy.is_autoscaling_configured()
    assert 2 <= auto["min_replicas"] < auto["max_replicas"]  # a failed rollout leaves replicas serving
    assert 0 < auto["target_ongoing_requests"] <= policy.max_ongoing_requests
    assert policy.max_ongoing_requests >= args.max_batch_size  # a replica can fill a batch
    assert args.num_cpus >= 1 and not args.allow_reload  # replicas claim a CPU; weights go out by user_config
    assert PolicyUserConfig.model_validate(policy.user_config).checkpoint.startswith("/mnt/runs/")
    assert (config.http_options.host, config.http_options.port) == ("0.0.0.0", 8000)


def test_rayservice_serves_the_serve_config_on_the_project_image():
    from ray.serve.schema import ServeDeploySchema

    service = yaml.safe_load((MANIFESTS / "rayservice.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert embedded == serve_config()  # one config: the two files cannot drift apart
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == ray.__version__ and cluster["authOptions"]["mode"] == "token"
    head, workers = cluster["headGroupSpec"], cluster["workerGroupSpecs"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert workers and all("nvidia.com/gpu" not in g["template"]["spec"]["containers"][0]["resources"]["limits"]
                           for g in workers)
    jobs = list(yaml.safe_load_all((MANIFESTS / "rayjob.yaml").read_text()))
    claim = next(d for d in jobs if d["kind"] == "PersistentVolumeClaim")["metadata"]["name"]
    application = embedded["applications"][0]
    checkpoints = [application["args"]["checkpoint"], application["deployments"][0]["user_config"]["checkpoint"]]
    for group in [head, *workers]:
        pod = group["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == image_tag()
        assert {"containerPort": 8000, "name": "serve"} in container["ports"]
        (volume,) = pod["volumes"]
        assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
        (mount,) = container["volumeMounts"]
        assert mount["name"] == volume["name"] and mount["readOnly"] is True
        assert all(c.startswith(mount["mountPath"] + "/") for c in checkpoints)
    # the workers hold max_replicas replicas of `num_cpus` CPUs each
    capacity = sum(g["maxReplicas"] * float(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
                   for g in workers)
    deployment = application["deployments"][0]
    assert capacity >= deployment["autoscaling_config"]["max_replicas"] * application["args"]["num_cpus"]


@pytest.mark.parametrize("name", ["cluster.yaml", "rayjob.yaml", "runtime_env.yaml", "serve_config.yaml",
                                  "rayservice.yaml"])
def test_manifests_are_documented_at_the_top(name):
    assert (MANIFESTS / name).read_text().startswith("#")
