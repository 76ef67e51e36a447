"""REST client for PAN models served by TensorFlow Serving (see serving/README.md).

    python -m serving.client --url=http://HOST:8501 --model=pan [--label=x4 | --version=N] \\
        --input=IMG_OR_DIR --output_dir=DIR [--signature=bytes|tensor] [--format=row|columnar] \\
        [--timeout=S]

One request per image, so images may differ in size and one bad file does not
sink the others: every file is tried, failures are reported one line each, and
the exit status is 1 if any failed. The request and response JSON follow TF
Serving's documented REST API:

* URL ``/v1/models/<model>[/versions/<N> | /labels/<label>]:predict``;
* row format ``{"signature_name": …, "instances": [<row>, …]}`` answered with
  ``{"predictions": [...]}``; columnar format ``{"inputs": {<name>: …}}`` answered
  with ``{"outputs": …}`` (a bare value when the signature has one output, an
  object keyed by output name otherwise);
* binary strings travel as ``{"b64": "<base64>"}`` both ways (tensors whose name
  ends in ``_bytes``);
* errors come back as ``{"error": "<message>"}`` with a non-2xx status.

``--signature=bytes`` (default) sends the encoded file (``enhance_bytes``: the
server decodes it and answers with PNG bytes); ``--signature=tensor`` decodes the
image here and sends uint8 pixels (``serving_default``), which is ~4–10× larger
on the wire. Only the standard library is needed, plus numpy and Pillow for
``--signature=tensor``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import urllib.error
import urllib.request

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
SIGNATURES = {  # --signature → (signature name, input name, output name)
    "bytes": ("enhance_bytes", "image_bytes", "sr_image_bytes"),
    "tensor": ("serving_default", "images", "sr_images"),
}


class ClientError(Exception):
    """One failed request; the message is one line."""


# -- the REST contract ------------------------------------------------------------
def predict_url(url: str, model: str, version: int | None = None,
                label: str | None = None) -> str:
    """``URL/v1/models/MODEL[/versions/N|/labels/L]:predict``."""
    if version is not None and label is not None:
        raise ValueError("give a version or a label, not both")
    path = f"{url.rstrip('/')}/v1/models/{model}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{label}"
    return path + ":predict"


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


def bytes_request(images: list[bytes], columnar: bool = False) -> dict:
    """enhance_bytes request for encoded images (one row each)."""
    name, input_name, _ = SIGNATURES["bytes"]
    values = [_b64(data) for data in images]
    if columnar:
        return {"signature_name": name, "inputs": {input_name: values}}
    return {"signature_name": name, "instances": values}


def tensor_request(images: list, columnar: bool = False) -> dict:
    """serving_default request for uint8 [H,W,3] arrays of one size (one row each)."""
    name, input_name, _ = SIGNATURES["tensor"]
    values = [image.tolist() for image in images]
    if columnar:
        return {"signature_name": name, "inputs": {input_name: values}}
    return {"signature_name": name, "instances": values}


def _decode_value(value):
    """{"b64": s} → bytes; lists recurse; anything else as is."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def parse_response(body: dict, output_name: str) -> list:
    """The rows of ``output_name`` from a predict response (row or columnar)."""
    if "error" in body:
        raise ClientError(str(body["error"]))
    if "predictions" in body:
        rows = body["predictions"]
        # One named output: rows are its values; several: rows are {name: value} objects.
        if rows and isinstance(rows[0], dict) and set(rows[0]) != {"b64"}:
            rows = [row[output_name] for row in rows]
        return [_decode_value(row) for row in rows]
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict) and set(outputs) != {"b64"}:
            outputs = outputs[output_name]
        return _decode_value(outputs)
    raise ClientError(f"response has none of predictions/outputs/error: {str(body)[:200]}")


def post_json(url: str, payload: dict, timeout: float) -> dict:
    """POSTs JSON and returns the decoded answer; every failure is a one-line ClientError."""
    data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
    except urllib.error.HTTPError as e:
        raise ClientError(f"HTTP {e.code} from {url}: {_error_text(e.read())}") from None
    except (socket.timeout, TimeoutError):
        raise ClientError(f"no answer from {url} within {timeout:g} s (--timeout)") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise ClientError(f"no answer from {url} within {timeout:g} s (--timeout)") from None
        raise ClientError(f"cannot connect to {url}: {e.reason}") from None
    except OSError as e:  # reset connections and the like
        raise ClientError(f"connection to {url} failed: {e}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise ClientError(f"{url} answered with non-JSON: {text[:200]!r}") from None


def _error_text(body: bytes) -> str:
    """TF Serving's {"error": …} message (first line), or the start of the body."""
    try:
        message = str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")[:300] or "(empty body)"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else message


# -- one file ---------------------------------------------------------------------
def enhance_file(path: str, url: str, signature: str, columnar: bool, timeout: float) -> bytes:
    """Sends one image; returns the enhanced image as PNG bytes."""
    with open(path, "rb") as f:
        data = f.read()
    _, _, output_name = SIGNATURES[signature]
    if signature == "bytes":
        body = post_json(url, bytes_request([data], columnar), timeout)
        (png,) = parse_response(body, output_name)
        return png

    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ClientError(f"cannot decode the image: {e}") from None
    body = post_json(url, tensor_request([image], columnar), timeout)
    (pixels,) = parse_response(body, output_name)
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def list_inputs(path: str) -> list[str]:
    """An image file, or the image files directly inside a directory (sorted)."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
        return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if os.path.isfile(path):
        return [path]
    raise ClientError(f"--input={path} does not exist")


def output_names(paths: list[str]) -> list[str]:
    """``stem.png``; the full name + .png where two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [f"{s}.png" if stems.count(s) == 1 else f"{os.path.basename(p)}.png"
            for s, p in zip(stems, paths)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.client",
                                     description="Enhance images with a PAN model on TF Serving.")
    parser.add_argument("--url", default="http://localhost:8501", help="TF Serving REST address")
    parser.add_argument("--model", default="pan", help="model name in models.config")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--label", help="version label: x2, x4, x8 or r<N> (default: latest)")
    which.add_argument("--version", type=int, help="version number (= stage)")
    parser.add_argument("--input", required=True, help="an image file or a directory of images")
    parser.add_argument("--output_dir", required=True, help="where the PNG results go")
    parser.add_argument("--signature", choices=sorted(SIGNATURES), default="bytes",
                        help="bytes: send the file (default); tensor: send uint8 pixels")
    parser.add_argument("--format", choices=("row", "columnar"), default="row",
                        help="JSON layout: row ('instances') or columnar ('inputs')")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)

    try:
        paths = list_inputs(args.input)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not paths:
        print(f"error: --input={args.input} holds no {'/'.join(IMAGE_EXTENSIONS)} files",
              file=sys.stderr)
        return 1
    os.makedirs(args.output_dir, exist_ok=True)
    url = predict_url(args.url, args.model, args.version, args.label)
    failed = 0
    for path, name in zip(paths, output_names(paths)):
        try:
            png = enhance_file(path, url, args.signature, args.format == "columnar", args.timeout)
        except (ClientError, OSError) as e:
            failed += 1
            print(f"error: {path}: {e}", file=sys.stderr)
            continue
        out = os.path.join(args.output_dir, name)
        with open(out, "wb") as f:
            f.write(png)
        print(f"{path} -> {out}")
    print(f"enhanced {len(paths) - failed} of {len(paths)} images into {args.output_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
