"""A small synthetic MPII and FLIC in the official file layout, and a local server for it, so that the paper
profile's data path (`hgstudy download`, the MPII and FLIC loaders, the JPEG names) runs end to end offline.

    python scripts/paper_mirror.py build MIRROR [--annotations DIR] [--train 64] [--valid 32] [--datasets mpii flic]
    python scripts/paper_mirror.py serve MIRROR [--seconds 1800] [--port-file FILE]

`build` writes MIRROR/www/<path of every official URL of hgstudy.data.download.DATASETS> and MIRROR/pins.json.
The people are real: MPII's from the poses packaged with hgstudy (hgstudy.mannequin.poses, converted from the
official annotation files), FLIC's from pose-hg-train's split files. Their images are rendered mannequins at
each person's real position and size, on images of the real size under the real names (MPII: every annotated
person of the image; FLIC frames are 720 x 480), so a network can learn something from them. Only `--train`
training people (a seeded sample) and the first `--valid` validation people (the ones evaluation takes) have
images. Files the mirror cannot serve byte for byte are fabricated in the official layout: MPII's train.h5 (the
sampled people) and test.h5 (a stand-in), FLIC's two split files (the same people), the archives. MPII's real
valid.h5 is served as it is when given (then verified by its official pin; without it, one is made from the
packaged poses). pins.json lists the SHA-256 of every file the official pins cannot verify, for
`hgstudy download --mirror URL --mirror-pins MIRROR/pins.json` (tests only).

`serve` answers GET and HEAD on 127.0.0.1 with single byte ranges (206 / 416, as real servers answer the
downloader's resume requests) and stops by itself after `--seconds`.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import io
import json
import re
import signal
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import h5py
import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.joints import FLIC_JOINTS, MPII_JOINTS
from hgstudy.data.download import DATASETS, sha256_file
from hgstudy.mannequin import render, scene
from hgstudy.mannequin.poses import load_poses

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"  # where developers and CI have the real annotation files
FLIC_SIZE = (720, 480)
# FLIC part -> MPII joint of the mannequin's skeleton (eyes and nose place its neck and head, see flic_people)
FLIC_TO_MPII = {FLIC_JOINTS.index(n): MPII_JOINTS.index(n) for n in FLIC_JOINTS if n in MPII_JOINTS}
EPOCH = (1980, 1, 1, 0, 0, 0)  # archive member times: the same bytes on every build
ORIGIN = 1.0  # annotations put the first pixel's centre at (1, 1) (`hgstudy.core.geometry.origin_shift`)


def served(name: str) -> str:
    """The path under www/ of the official file `name` (e.g. "mpii/valid.h5"): its URL's path."""
    remote = next(f for files in DATASETS.values() for f in files if f.name == name)
    return urllib.parse.urlsplit(remote.url).path.lstrip("/")


# ------------------------------------------------------------------------------------------------ images
def render_image(size, people, rng, bank) -> np.ndarray:
    """A (height, width) BGR image: an enlarged, recoloured texture, then every person, the smallest (farthest)
    first. people: (joints (16, 2) all filled in, hidden (16,) bool, head length in pixels)."""
    u = rng.random(5)
    texture = bank.textures[int(u[0] * len(bank.textures))]
    image = cv2.resize(texture, size, interpolation=cv2.INTER_LINEAR)
    image = np.clip(image * (0.55 + 0.7 * u[1:4]), 0, 255).astype(np.uint8)
    light = np.array([np.cos(2 * np.pi * u[4]), np.sin(2 * np.pi * u[4])])
    for pts, hidden, head in sorted(people, key=lambda p: p[2]):
        look = render.sample_appearance(rng)
        shapes = render.person_shapes(pts - ORIGIN, hidden, head, look, light, detail=head > 6)
        render.draw_shapes(shapes, image)
    return cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), 0.7), cv2.COLOR_RGB2BGR)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise UserError("OpenCV could not encode a JPEG")
    return data.tobytes()


def hidden_flags(annotated, visible) -> np.ndarray:
    hidden = np.asarray(annotated, bool) & ~np.asarray(visible, bool)
    hidden[..., list(render.DERIVED_FLAGS)] = False
    return hidden


# -------------------------------------------------------------------------------------------------- MPII
def mpii_files(poses, train: int, valid: int, valid_h5: Path | None, rng) -> tuple[dict, dict]:
    """({official name: bytes} of the split files, {image name: ((width, height), people to draw)})."""
    k = np.sort(rng.choice(len(poses.train), size=min(train, len(poses.train)), replace=False))
    people, (center, scale) = poses.train[k], poses.crop("train")  # centre and scale as the split files hold them
    files = {"mpii/train.h5": h5_bytes(split_fields(poses, people, center[k], scale[k], poses.head_size("train")[k]))}
    val = split_fields(poses, poses.val, poses.val_center, poses.val_scale, poses.val_norm)
    if valid_h5 is not None:
        files["mpii/valid.h5"] = Path(valid_h5).read_bytes()
        with h5py.File(valid_h5, "r") as f:
            names = [n.decode() for n in f["imgname"][:valid]]
        if names != [poses.image_names[poses.image[p]].decode() for p in poses.val[:valid]]:
            raise UserError(f"{valid_h5} is not MPII's valid.h5 (its people are not the packaged poses' ones)")
    else:
        files["mpii/valid.h5"] = h5_bytes(val)
    test = ("center", "scale", "imgname", "index", "person")  # a stand-in: the mirror has no test images
    files["mpii/test.h5"] = h5_bytes({k: val[k][:8] for k in test})
    draw = render.complete_poses(poses.joints, poses.annotated, poses.objpos, poses.scale)
    hidden = hidden_flags(poses.annotated, poses.visible)
    order, start = poses.people_of_image()
    images = {}
    for i in sorted(set(poses.image[people]) | set(poses.image[poses.val[:valid]])):
        drawn = [(draw[q], hidden[q], 200 * poses.scale[q] / 6) for q in order[start[i]:start[i + 1]]]
        images[poses.image_names[i].decode()] = (tuple(int(v) for v in poses.image_size[i]), drawn)
    return files, images


def split_fields(poses, people, center, scale, norm) -> dict:
    """pose-hg-train's split-file fields (and dtypes) for `people` of the packaged poses."""
    part = np.where(poses.annotated[people][..., None], poses.joints[people], 0.0)
    rank = np.array([int(np.sum(poses.image[people[:k]] == poses.image[p])) for k, p in enumerate(people)])
    return {"center": np.asarray(center, np.float64), "scale": np.asarray(scale, np.float64), "part": part,
            "visible": poses.visible[people].astype(np.float64), "normalize": np.asarray(norm, np.float64),
            "imgname": np.array([poses.image_names[poses.image[p]] for p in people], "S13"),
            "index": poses.image[people].astype(np.float64), "person": rank.astype(np.float64),
            "torsoangle": np.zeros(len(people))}


def h5_bytes(fields: dict) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, value in fields.items():
            f[key] = value
    return buffer.getvalue()


# -------------------------------------------------------------------------------------------------- FLIC
def flic_files(poses, train: int, valid: int, train_h5: Path, valid_h5: Path, rng) -> tuple[dict, dict]:
    """The same for FLIC: subsets of the real split files (all fields, dtypes kept) and the people's frames."""
    files, chosen = {}, []
    for name, path in (("flic/train.h5", train_h5), ("flic/valid.h5", valid_h5)):
        if not Path(path).is_file():
            raise UserError(f"FLIC split file {path} not found: pass --annotations DIR (with flic/train.h5 and "
                            "flic/valid.h5, pose-hg-train's) or --datasets mpii")
        with h5py.File(path, "r") as f:
            n = len(f["scale"])
            index = np.sort(rng.choice(n, size=min(train, n), replace=False)) if "train" in name else \
                np.arange(min(valid, n))
            fields = {k: f[k][()][index] for k in f}
        files[name] = h5_bytes(fields)
        chosen.append(fields)
    part = np.concatenate([c["part"] for c in chosen])
    names = [n.decode() for c in chosen for n in c["imgname"]]
    draw, heads = flic_people(poses, part)
    images: dict = {}
    for name, pts, head in zip(names, draw, heads, strict=True):
        images.setdefault(name, (FLIC_SIZE, []))[1].append((pts, np.zeros(16, bool), head))
    return files, images


def flic_people(poses, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLIC parts (N, 11, 2) -> mannequin joints (N, 16, 2) and head lengths: arms and hips as annotated, the
    upper neck and head top placed from the shoulders and eyes, the legs from MPII's mean pose."""
    n = len(part)
    joints, annotated = np.zeros((n, 16, 2)), np.zeros((n, 16), bool)
    for f, m in FLIC_TO_MPII.items():
        joints[:, m], annotated[:, m] = part[:, f], True
    eyes = part[:, [FLIC_JOINTS.index("l_eye"), FLIC_JOINTS.index("r_eye")]].mean(axis=1)
    shoulders = joints[:, [12, 13]].mean(axis=1)
    neck = shoulders + 0.4 * (eyes - shoulders)
    joints[:, 8], joints[:, 9] = neck, neck + (eyes - neck) / 0.55
    annotated[:, [8, 9]] = True
    mpii = np.flatnonzero(poses.annotated.all(axis=1))  # the template comes from fully annotated MPII people
    every = render.complete_poses(np.concatenate([poses.joints[mpii], joints]),
                                  np.concatenate([poses.annotated[mpii], annotated]),
                                  np.concatenate([poses.objpos[mpii], neck]),
                                  np.concatenate([poses.scale[mpii], np.ones(n)]))[len(mpii):]
    return every, np.maximum(np.hypot(*(joints[:, 9] - joints[:, 8]).T), 4.0)


# ---------------------------------------------------------------------------------------------- archives
def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=buffer, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = sorted({str(Path(n).parent) for n in members} - {"."})
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, EPOCH), data, zipfile.ZIP_STORED)
    return buffer.getvalue()


NOTE = (b"Synthetic mirror made by hgstudy's scripts/paper_mirror.py: real annotations of a few people, rendered "
        b"mannequins instead of the photographs. For tests of the download and data path only.\n")


def build(out: Path, annotations: Path = SHARED, train: int = 64, valid: int = 32, datasets=("mpii", "flic"),
          mpii_valid: Path | None = None, flic_train: Path | None = None, flic_valid: Path | None = None,
          seed: int = 0, log=print) -> Path:
    """Write the mirror into `out` (www/ and pins.json, see the module docstring); return pins.json's path."""
    out = Path(out)
    if train < 1 or valid < 8:
        raise UserError(f"--train must be >= 1 and --valid >= 8 (the data stage shows 8), got {train}, {valid}")
    if (out / "pins.json").exists():
        raise UserError(f"{out} already holds a mirror: remove it or choose another folder")
    poses, bank = load_poses(), scene.texture_bank(256)
    files: dict[str, bytes] = {}
    if "mpii" in datasets:
        valid_h5 = mpii_valid or annotations / "mpii" / "valid.h5"
        split, images = mpii_files(poses, train, valid, valid_h5 if valid_h5.is_file() else None,
                                   np.random.default_rng([seed, 1]))
        log(f"mpii: rendering {len(images)} images ({train} train, {valid} validation people)")
        pictures = {f"images/{n}": jpeg(render_image(s, p, np.random.default_rng([seed, 1, k]), bank))
                    for k, (n, (s, p)) in enumerate(images.items())}
        files |= split
        files["mpii/mpii_human_pose_v1.tar.gz"] = tar_gz(pictures)
        files["mpii/mpii_human_pose_v1_u12_2.zip"] = zip_bytes({"mpii_human_pose_v1_u12_2/README.md": NOTE})
    if "flic" in datasets:
        split, images = flic_files(poses, train, valid, flic_train or annotations / "flic" / "train.h5",
                                   flic_valid or annotations / "flic" / "valid.h5", np.random.default_rng([seed, 2]))
        log(f"flic: rendering {len(images)} frames ({train} train, {valid} test people)")
        pictures = {f"FLIC/images/{n}": jpeg(render_image(s, p, np.random.default_rng([seed, 2, k]), bank))
                    for k, (n, (s, p)) in enumerate(images.items())}
        files |= split
        files["flic/FLIC.zip"] = zip_bytes({"FLIC/README.txt": NOTE, **pictures})
    pins = {}
    official = {f.name: f for fs in DATASETS.values() for f in fs}
    for name, data in files.items():
        path = out / "www" / served(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = sha256_file(path)
        if digest != official[name].sha256:  # what the official pins cannot verify
            pins[name] = {"sha256": digest, "size": len(data), "url": official[name].url}
    note = "SHA-256 of the synthetic mirror's files (hgstudy download --mirror-pins; tests only)"
    text = json.dumps({"comment": note, "files": pins}, indent=1)
    (out / "pins.json").write_text(text + "\n")
    log(f"mirror: {len(files)} files under {out / 'www'}, {len(pins)} pinned by {out / 'pins.json'}")
    return out / "pins.json"


# ------------------------------------------------------------------------------------------------ server
class RangeHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of the mirror's files with single byte ranges (`bytes=a-b`, `a-`, `-n`); no folder listings."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "Not Found")
            return None
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        asked = re.fullmatch(r"bytes=(\d*)-(\d*)", (self.headers.get("Range") or "").strip())
        if asked and any(asked.groups()):  # anything else is ignored, as RFC 9110 allows: the whole file
            a, b = asked.groups()
            first, last = (max(size - int(b), 0), size - 1) if not a else (int(a), min(int(b or size - 1), size - 1))
            if first >= size or first > last:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            status = 206
        source = open(path, "rb")  # closed by the base class after copyfile
        source.seek(first)
        self.remaining = last - first + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.remaining))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        return source

    def copyfile(self, source, outputfile):
        while self.remaining > 0 and (block := source.read(min(1 << 16, self.remaining))):
            outputfile.write(block)
            self.remaining -= len(block)

    def log_message(self, *args):
        pass


class Server:
    """The mirror served on 127.0.0.1 from a thread; it stops by itself after `seconds` (or at `close`)."""

    def __init__(self, mirror: Path, seconds: float, port: int = 0):
        root = Path(mirror) / "www"
        if not root.is_dir():
            raise UserError(f"{mirror} holds no mirror (no www/ folder): build one first")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(RangeHandler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()
        self.timer = threading.Timer(seconds, self.httpd.shutdown)
        self.timer.daemon = True
        self.timer.start()

    def close(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(mirror: Path, seconds: float, port: int = 0, port_file: Path | None = None) -> None:
    server = Server(mirror, seconds, port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if port_file:
            tmp = Path(f"{port_file}.partial")
            tmp.write_text(server.url + "\n")
            tmp.replace(port_file)  # whole or absent: the caller polls for it
        print(f"serving {mirror} at {server.url} for {seconds:.0f} s", flush=True)
        server.thread.join()
    finally:
        server.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/paper_mirror.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write a synthetic mirror into MIRROR")
    b.add_argument("mirror", type=Path)
    b.add_argument("--annotations", type=Path, default=SHARED,
                   help=f"folder with mpii/valid.h5, flic/train.h5, flic/valid.h5 (default {SHARED})")
    b.add_argument("--mpii-valid", type=Path, help="MPII's valid.h5 (default ANNOTATIONS/mpii/valid.h5, if there)")
    b.add_argument("--flic-train", type=Path, help="FLIC's train.h5 (default ANNOTATIONS/flic/train.h5)")
    b.add_argument("--flic-valid", type=Path, help="FLIC's valid.h5 (default ANNOTATIONS/flic/valid.h5)")
    b.add_argument("--train", type=int, default=64, help="training people per dataset (default 64)")
    b.add_argument("--valid", type=int, default=32, help="validation people with images (default 32)")
    b.add_argument("--datasets", nargs="+", choices=("mpii", "flic"), default=["mpii", "flic"])
    b.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("serve", help="serve MIRROR on 127.0.0.1 (Range requests), stopping after --seconds")
    s.add_argument("mirror", type=Path)
    s.add_argument("--seconds", type=float, default=1800.0, help="stop after this long (default 1800)")
    s.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    s.add_argument("--port-file", type=Path, help="write the server's URL here once it listens")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.mirror, args.annotations, args.train, args.valid, args.datasets, args.mpii_valid,
                  args.flic_train, args.flic_valid, args.seed)
        else:
            serve(args.mirror, args.seconds, args.port, args.port_file)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
