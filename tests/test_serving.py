"""Serving over REST: the client, TF Serving's documented JSON rules, bad inputs.

No tensorflow_model_server exists here, so the end-to-end tests run against a
stand-in: an ``http.server`` on 127.0.0.1 that applies the REST API's documented
rules (URLs with versions and labels, row ``instances`` / columnar ``inputs``,
``{"b64": …}`` for DT_STRING inputs and for outputs named ``*_bytes``,
``predictions`` / ``outputs`` / ``error`` answers) to the exported SavedModels,
loaded the way tensorflow_model_server loads them: a graph-mode session that
runs the SavedModel's restore op and feeds the signature's tensors with no
shape check (the server checks dtypes only). The same tests run against a
real ``tensorflow_model_server`` when one is on PATH.
"""

import base64
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import config_pb2

from conftest import REPO, smooth_image, tiny_config
from pan_tf import export as export_lib
from pan_tf.generator import random_generator
from serving import client

MAX_PIXELS = 48 * 48  # a small per-image limit keeps the "too many pixels" case cheap


# -- an exported model (random weights, strong noise) ----------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Versions 0 (r8), 1 (x2), 2 (x4) of one random G_ema under WORKDIR/export."""
    workdir = tmp_path_factory.mktemp("serving")
    config = tiny_config("unused", model={"scale": 4}, run={"max_input_pixels": MAX_PIXELS})
    g_ema = random_generator(config.model, seed=1, noise_strength=0.5)
    for stage in range(config.model.num_stages):
        export_lib.export_stage(g_ema, config, stage, str(workdir), images_seen=100 + stage)
    return workdir, config


def _images(folder, sizes, seed=0):
    """Photo-like PNG and JPEG files of the given (height, width)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        image = smooth_image(rng, h, w)
        if i % 2:
            path, data = folder / f"face{i}.jpg", tf.io.encode_jpeg(image, quality=95)
        else:
            path, data = folder / f"face{i}.png", tf.io.encode_png(image)
        tf.io.write_file(str(path), data)
        paths.append(path)
    return paths


def _reference(workdir, version, image) -> np.ndarray:
    """What the SavedModel itself (tf.saved_model.load) makes of an image.

    ``image``: encoded bytes (decoded by TF, like the bytes signature) or uint8 pixels.
    """
    loaded = tf.saved_model.load(str(workdir / "export" / "pan" / str(version)))
    if isinstance(image, bytes):
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
    return loaded.signatures["serving_default"](images=image[None])["sr_images"][0].numpy()


# -- the stand-in for tensorflow_model_server ------------------------------------------
class Servable:
    """One SavedModel version loaded like tensorflow_model_server does (graph + session)."""

    def __init__(self, path):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.load(self.session, ["serve"], path)
        self.signatures = dict(meta.signature_def)
        self._callables = {}
        self._lock = threading.Lock()

    def run(self, signature_name, feeds: dict) -> dict:
        sig = self.signatures[signature_name]
        in_names, out_names = sorted(sig.inputs), sorted(sig.outputs)
        with self._lock:
            if signature_name not in self._callables:
                options = config_pb2.CallableOptions(
                    feed=[sig.inputs[n].name for n in in_names],
                    fetch=[sig.outputs[n].name for n in out_names])
                self._callables[signature_name] = self.session._make_callable_from_options(options)
        values = self._callables[signature_name](*[feeds[n] for n in in_names])
        return dict(zip(out_names, values))


class RestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class RestStandIn:
    """TF Serving's REST rules over the versions and labels of a models.config."""

    URL = re.compile(r"^/v1/models/(?P<model>[^/:]+)"
                     r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                     r"(?::(?P<verb>predict|classify|regress))?$")

    def __init__(self, models_config: str, serving_root: str, local_root: str):
        self.models = {}
        text = open(models_config).read()
        for block in re.findall(r"config \{(.*?)\n  \}", text, re.S):
            name = re.search(r'name: "([^"]+)"', block).group(1)
            base = re.search(r'base_path: "([^"]+)"', block).group(1)
            local = os.path.join(local_root, os.path.relpath(base, serving_root))
            versions = [int(v) for v in re.findall(r"versions: (\d+)", block)]
            labels = {k: int(v) for k, v in
                      re.findall(r'key: "([^"]+)"\s+value: (\d+)', block)}
            self.models[name] = {
                "versions": {v: Servable(os.path.join(local, str(v))) for v in versions},
                "labels": labels}

    # URL → servable, as ModelSpec resolution does: version, label, or the latest.
    def _servable(self, model, version, label):
        if model not in self.models:
            raise RestError(404, f"Servable not found for request: Latest({model})")
        entry = self.models[model]
        if label is not None:
            if label not in entry["labels"]:
                raise RestError(404, f"Unrecognized servable version label: {label}")
            version = entry["labels"][label]
        elif version is None:
            version = max(entry["versions"])
        if int(version) not in entry["versions"]:
            raise RestError(404, f"Servable not found for request: Specific({model}, {version})")
        return int(version), entry["versions"][int(version)]

    def get(self, path):
        m = self.URL.match(path)
        if not m or m["verb"]:
            raise RestError(404, f"Malformed request: GET {path}")
        entry = self.models.get(m["model"])
        if entry is None:
            raise RestError(404, f"Could not find any versions of model {m['model']}")
        versions = sorted(entry["versions"])
        if m["version"] or m["label"]:
            versions = [self._servable(m["model"], m["version"], m["label"])[0]]
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for v in versions]}

    def post(self, path, body: bytes):
        m = self.URL.match(path)
        if not m or m["verb"] != "predict":
            raise RestError(404, f"Malformed request: POST {path}")
        _, servable = self._servable(m["model"], m["version"], m["label"])
        try:
            request = json.loads(body)
        except ValueError as e:
            raise RestError(400, f"JSON Parse error: {e}") from None
        if not isinstance(request, dict):
            raise RestError(400, "Request body must be a JSON object")
        if ("instances" in request) == ("inputs" in request):
            raise RestError(400, "Missing 'inputs' or 'instances' key"
                            if "inputs" not in request else
                            "Not both of 'instances' and 'inputs' can be specified")
        name = request.get("signature_name", "serving_default")
        if name not in servable.signatures:
            raise RestError(400, f'Serving signature name: "{name}" not found in signature def')
        sig = servable.signatures[name]
        dtypes = {n: tf.dtypes.as_dtype(info.dtype) for n, info in sig.inputs.items()}
        row = "instances" in request
        feeds = self._feeds(request["instances" if row else "inputs"], dtypes, row)
        try:
            outputs = servable.run(name, feeds)
        except tf.errors.OpError as e:
            raise RestError(404 if isinstance(e, tf.errors.NotFoundError) else 400,
                            e.message) from None
        encoded = {n: _to_json(v, n) for n, v in outputs.items()}
        if row:
            rows = len(next(iter(outputs.values())))
            if len(encoded) == 1:
                return {"predictions": next(iter(encoded.values()))}
            return {"predictions": [{n: encoded[n][i] for n in encoded} for i in range(rows)]}
        return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}

    @staticmethod
    def _feeds(payload, dtypes, row):
        names = sorted(dtypes)
        if row:
            if not isinstance(payload, list):
                raise RestError(400, "'instances' must be a list")
            named = payload and isinstance(payload[0], dict) and set(payload[0]) != {"b64"}
            if len(names) == 1 and not named:
                columns = {names[0]: payload}
            else:
                columns = {n: [r[n] for r in payload] for n in names}
        else:
            named = isinstance(payload, dict) and set(payload) != {"b64"}
            columns = payload if named else {names[0]: payload}
        if set(columns) != set(names):
            raise RestError(400, f"input size does not match signature: {sorted(columns)} "
                                 f"vs {names}")
        return {n: _from_json(columns[n], dtypes[n], n) for n in names}


def _from_json(value, dtype, name):
    """JSON → numpy of the signature's dtype, as the REST API's JSON mapping says."""
    if dtype == tf.string:
        def decode(v):
            if isinstance(v, list):
                return [decode(x) for x in v]
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            if isinstance(v, str):
                return v.encode("utf-8")
            raise RestError(400, f"JSON Value: {json.dumps(v)[:50]} not of type string")
        return np.array(decode(value), dtype=object)
    try:
        array = np.asarray(value)
    except ValueError:
        raise RestError(400, f"Failed to process element: {name}: "
                             f"inconsistent tensor shape (ragged lists)") from None
    if array.size and (array.dtype.kind not in "iu" if dtype.is_integer else
                       array.dtype.kind not in "iuf"):
        raise RestError(400, f"JSON Value of input {name} is not of expected type: "
                             f"{dtype.name}")
    if array.size and dtype.is_integer and (array.min() < dtype.min or array.max() > dtype.max):
        raise RestError(400, f"JSON Value of input {name} is out of range for {dtype.name}")
    return array.astype(dtype.as_numpy_dtype)


def _to_json(value, name):
    if value.dtype == object:  # DT_STRING
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()},
                                otypes=[object])(value).tolist()
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
    return value.tolist()


def _serve_in_thread(handler_class):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _handler_for(standin: RestStandIn):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, call):
            try:
                status, body = 200, call()
            except RestError as e:
                status, body = e.status, {"error": str(e)}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._answer(lambda: standin.get(self.path))

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer(lambda: standin.post(self.path, body))

        def log_message(self, *args):
            pass

    return Handler


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url, payload, timeout=60):
    """(status, JSON body) of a POST, error statuses included."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module", params=["stand-in", "tensorflow_model_server"])
def server(request, exported, tmp_path_factory):
    """Base URL of a REST server for the exported model."""
    workdir, _ = exported
    export_root = str(workdir / "export")
    if request.param == "stand-in":
        standin = RestStandIn(os.path.join(export_root, "models.config"),
                              export_lib.SERVING_ROOT, export_root)
        httpd, url = _serve_in_thread(_handler_for(standin))
        yield url
        httpd.shutdown()
        return
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip("tensorflow_model_server is not on PATH")
    # The generated config points at /models (the Docker mount); point it here instead.
    local_config = str(tmp_path_factory.mktemp("tfs") / "models.config")
    export_lib.write_models_config(export_root, serving_root=export_root, path=local_config)
    rest_port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--port={_free_port()}", f"--rest_api_port={rest_port}",
         f"--model_config_file={local_config}", "--allow_version_labels_for_unavailable_models"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            status = _get(f"{url}/v1/models/pan")["model_version_status"]
            if sum(s["state"] == "AVAILABLE" for s in status) == 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"tensorflow_model_server did not come up: {proc.stdout.read()[-3000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


# -- end to end through the client -----------------------------------------------------
def test_client_enhances_a_folder_over_rest(server, exported, tmp_path, capsys):
    workdir, _ = exported
    inputs = _images(tmp_path / "in", [(16, 16), (13, 21), (8, 5)])
    (tmp_path / "in" / "notes.png").write_bytes(b"this is not an image")  # fails alone

    # Bytes signature, row format, by label (x4 = version 2).
    rc = client.main([f"--url={server}", "--model=pan", "--label=x4", f"--input={tmp_path / 'in'}",
                      f"--output_dir={tmp_path / 'x4'}"])
    out, err = capsys.readouterr()
    assert rc == 1 and "enhanced 3 of 4 images" in out
    errors = err.strip().splitlines()
    assert len(errors) == 1 and "notes.png" in errors[0] and "HTTP 400" in errors[0]
    assert "not a PNG, JPEG, WebP, BMP or GIF image" in errors[0]
    for path, (h, w) in zip(inputs, [(16, 16), (13, 21), (8, 5)]):
        got = tf.io.decode_png(tf.io.read_file(str(tmp_path / "x4" / f"{path.stem}.png"))).numpy()
        assert got.shape == (4 * h, 4 * w, 3)
        # Same graph, same kernels: the server's answer is the SavedModel's own output.
        assert np.abs(got.astype(int) - _reference(workdir, 2, path.read_bytes())).max() <= 1

    # Tensor signature, columnar format, by version (1 = x2), one file.
    rc = client.main([f"--url={server}", "--model=pan", "--version=1", f"--input={inputs[1]}",
                      f"--output_dir={tmp_path / 'v1'}", "--signature=tensor", "--format=columnar"])
    assert rc == 0, capsys.readouterr().err
    got = tf.io.decode_png(tf.io.read_file(str(tmp_path / "v1" / "face1.png"))).numpy()
    assert got.shape == (26, 42, 3)
    pixels = np.asarray(Image.open(inputs[1]).convert("RGB"))  # decoded as the client does
    assert np.abs(got.astype(int) - _reference(workdir, 1, pixels)).max() <= 1


def test_model_status_lists_every_version(server):
    status = _get(f"{server}/v1/models/pan")["model_version_status"]
    assert sorted(int(s["version"]) for s in status) == [0, 1, 2]
    assert all(s["state"] == "AVAILABLE" for s in status)
    labelled = _get(f"{server}/v1/models/pan/labels/x2")["model_version_status"]
    assert [s["version"] for s in labelled] == ["1"]


def _bytes_rows(*datas):
    return {"signature_name": "enhance_bytes",
            "instances": [{"b64": base64.b64encode(d).decode()} for d in datas]}


@pytest.mark.parametrize("case, payload, message", [
    ("not an image", _bytes_rows(b"just text"), "not a PNG, JPEG, WebP, BMP or GIF"),
    ("binary junk", _bytes_rows(b"\x00\xff\xfe\x80junk"), "not a PNG, JPEG, WebP, BMP or GIF"),
    ("corrupt GIF", _bytes_rows(b"GIF89a and then garbage"), "GIF"),
    ("empty bytes", _bytes_rows(b""), "empty (0 bytes)"),
    ("truncated PNG", None, "PNG"),
    ("empty batch", {"signature_name": "enhance_bytes", "inputs": {"image_bytes": []}},
     "the batch is empty"),
    ("wrong rank", {"instances": [[[1, 2, 3], [4, 5, 6]]]}, "not compatible with expected shape"),
    ("four channels", {"instances": np.zeros((1, 4, 4, 4), int).tolist()},
     "not compatible with expected shape"),
    ("wrong dtype", {"instances": np.full((1, 4, 4, 3), 0.5).tolist()}, "uint8"),
    ("too many pixels", {"inputs": np.zeros((1, 49, 48, 3), int).tolist()},
     f"max_input_pixels={MAX_PIXELS}"),
])
def test_bad_inputs_are_rejected_and_the_server_keeps_serving(server, case, payload, message):
    if payload is None:  # a PNG cut short after its header
        png = tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy()
        payload = _bytes_rows(png[:60])
    status, body = _post(f"{server}/v1/models/pan/labels/x2:predict", payload)
    assert status == 400 and set(body) == {"error"}, (status, body)
    if not (case == "wrong dtype" and "uint8" not in body["error"]):  # a real server may
        assert message in body["error"], body["error"]                # word this its own way
    # The same process still answers a good request.
    status, body = _post(f"{server}/v1/models/pan/labels/x2:predict",
                         {"instances": np.zeros((1, 5, 7, 3), int).tolist()})
    assert status == 200 and np.asarray(body["predictions"]).shape == (1, 10, 14, 3)


def test_unknown_model_label_and_version_are_404_with_a_message(server, tmp_path, capsys):
    image = _images(tmp_path, [(8, 8)])[0]
    for args, fragment in ((["--model=nope"], "nope"), (["--model=pan", "--label=x16"], "x16"),
                           (["--model=pan", "--version=9"], "9")):
        rc = client.main([f"--url={server}", *args, f"--input={image}",
                          f"--output_dir={tmp_path / 'out'}"])
        err = capsys.readouterr().err.strip().splitlines()
        # 404 (not found) from the stand-in; a real server may answer 400 for a label.
        assert rc == 1 and len(err) == 1 and "HTTP 4" in err[0] and fragment in err[0], err


# -- the client alone: JSON contract, timeouts, connection errors --------------------------
def test_client_json_follows_the_documented_rest_api():
    assert (client.predict_url("http://h:8501/", "pan", label="x4")
            == "http://h:8501/v1/models/pan/labels/x4:predict")
    assert (client.predict_url("http://h:8501", "pan", version=2)
            == "http://h:8501/v1/models/pan/versions/2:predict")
    assert client.predict_url("http://h:8501", "pan") == "http://h:8501/v1/models/pan:predict"

    b64 = base64.b64encode(b"\x89PNG...").decode()
    assert client.bytes_request([b"\x89PNG..."]) == {
        "signature_name": "enhance_bytes", "instances": [{"b64": b64}]}
    assert client.bytes_request([b"\x89PNG..."], columnar=True) == {
        "signature_name": "enhance_bytes", "inputs": {"image_bytes": [{"b64": b64}]}}
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert client.tensor_request([pixels]) == {
        "signature_name": "serving_default", "instances": [pixels.tolist()]}
    assert client.tensor_request([pixels], columnar=True) == {
        "signature_name": "serving_default", "inputs": {"images": [pixels.tolist()]}}
    json.dumps(client.tensor_request([pixels]))  # plain ints, not numpy scalars

    # Responses: row → predictions, columnar → outputs; one output is unnamed,
    # several are objects keyed by name; {"b64"} values decode to bytes.
    out = {"b64": base64.b64encode(b"PNGDATA").decode()}
    assert client.parse_response({"predictions": [out]}, "sr_image_bytes") == [b"PNGDATA"]
    assert client.parse_response({"outputs": [out]}, "sr_image_bytes") == [b"PNGDATA"]
    assert client.parse_response({"outputs": {"sr_image_bytes": [out], "x": [1]}},
                                 "sr_image_bytes") == [b"PNGDATA"]
    assert client.parse_response({"predictions": [{"sr_image_bytes": out, "x": 1}]},
                                 "sr_image_bytes") == [b"PNGDATA"]
    assert client.parse_response({"predictions": [pixels.tolist()]}, "sr_images") == [
        pixels.tolist()]
    with pytest.raises(client.ClientError, match="bad things"):
        client.parse_response({"error": "bad things"}, "sr_images")


def test_client_reports_timeouts_and_unreachable_servers(tmp_path, capsys):
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            time.sleep(1.5)

        def log_message(self, *args):
            pass

    image = _images(tmp_path, [(8, 8), (8, 8)])
    httpd, url = _serve_in_thread(Slow)
    try:
        start = time.monotonic()
        rc = client.main([f"--url={url}", f"--input={tmp_path}", f"--output_dir={tmp_path / 'o'}",
                          "--timeout=0.3"])
        assert time.monotonic() - start < 3.0       # both files tried, neither waited long
    finally:
        httpd.shutdown()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 2 and all("within 0.3 s" in line for line in err), err

    rc = client.main([f"--url=http://127.0.0.1:{_free_port()}", f"--input={image[0]}",
                      f"--output_dir={tmp_path / 'o'}", "--timeout=5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "cannot connect" in err[0], err


def test_client_command_line(server, tmp_path):
    image = _images(tmp_path, [(8, 12)])[0]
    result = subprocess.run(
        [sys.executable, "-m", "serving.client", f"--url={server}", "--model=pan",
         f"--input={image}", f"--output_dir={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out" / "face0.png")))
    assert got.shape == (32, 48, 3)  # no label or version: the latest, x4
    missing = subprocess.run([sys.executable, "-m", "serving.client", f"--url={server}",
                              f"--input={tmp_path / 'nothing'}", f"--output_dir={tmp_path}"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "does not exist" in missing.stderr
