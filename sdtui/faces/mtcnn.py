"""MTCNN face detection: boxes and five landmarks per face.

    faces = detect_faces(image)    # [Face(box, score, landmarks)], best first

MTCNN (Zhang et al. 2016) is a cascade of three small networks: P-Net proposes candidate
boxes over an image pyramid, R-Net rejects most of them, O-Net refines the rest and gives
five landmarks (eyes, nose tip, mouth corners), which is what aligning a face to the
FFHQ template needs (`sdtui.faces.alignment`).

Why MTCNN: its trained weights (P-, R- and O-Net, about 2 MB of PyTorch state dicts) ship
on PyPI inside the `facenet-pytorch` wheel (MIT), whose own dependencies are unpinned and
install cleanly beside any torch and numpy 2; it gives five landmarks; RetinaFace (facexlib,
what A1111 uses) downloads its weights at run time, the TensorFlow and MediaPipe detectors
pin numpy below 2, and OpenCV's shipped Haar cascades give boxes without landmarks.

The networks here are our own code: the weights are read as data from the wheel's
`facenet_pytorch/data` folder (found without importing `facenet_pytorch`, whose `__init__`
pulls in much more) with `torch.load(weights_only=True)`. The pipeline is the standard one:
a pyramid from a smallest face of 20 px by factor 0.709, thresholds 0.6 / 0.7 / 0.7,
non-maximum suppression after each stage, box regression, boxes made square between
stages, and the landmarks from O-Net. Coordinates are continuous pixel coordinates: pixel
(i, j) covers [i, i + 1) x [j, j + 1), so its centre is (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from sdtui.faces import FaceDetectorError, detector_weights_folder

MIN_FACE_SIZE = 20
PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # left, top, right, bottom
    score: float  # O-Net's face probability
    landmarks: np.ndarray  # (5, 2) x, y: image-left eye, image-right eye, nose, mouth l, r


def _stage(module: nn.Module, x: torch.Tensor, pools: tuple[int | None, ...]) -> torch.Tensor:
    """conv{i} -> prelu{i} -> (max pool of that kernel, stride 2) for i = 1, 2, ..."""
    for index, pool in enumerate(pools, start=1):
        x = getattr(module, f"prelu{index}")(getattr(module, f"conv{index}")(x))
        if pool:
            x = F.max_pool2d(x, pool, 2, ceil_mode=True)
    return x


def _flatten(x: torch.Tensor) -> torch.Tensor:
    # the weights come from a column-major framework: flatten as (width, height, channel)
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


def _convs(module: nn.Module, layers: list[tuple[int, int, int]]) -> None:
    for index, (inputs, outputs, kernel) in enumerate(layers, start=1):
        setattr(module, f"conv{index}", nn.Conv2d(inputs, outputs, kernel))
        setattr(module, f"prelu{index}", nn.PReLU(outputs))


class ProposalNet(nn.Module):
    """P-Net: fully convolutional; per 12x12 window (stride 2), face probability and box."""

    def __init__(self) -> None:
        super().__init__()
        _convs(self, [(3, 10, 3), (10, 16, 3), (16, 32, 3)])
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _stage(self, x, (2, None, None))
        return self.conv4_1(x).softmax(dim=1)[:, 1], self.conv4_2(x)


class RefineNet(nn.Module):
    """R-Net: 24x24 crops -> face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        _convs(self, [(3, 28, 3), (28, 48, 3), (48, 64, 2)])
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu4(self.dense4(_flatten(_stage(self, x, (3, 3, None)))))
        return self.dense5_1(x).softmax(dim=1)[:, 1], self.dense5_2(x)


class OutputNet(nn.Module):
    """O-Net: 48x48 crops -> face probability, box offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        _convs(self, [(3, 32, 3), (32, 64, 3), (64, 64, 3), (64, 128, 2)])
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.prelu5(self.dense5(_flatten(_stage(self, x, (3, 3, 2, None)))))
        return self.dense6_1(x).softmax(dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


_NETS: tuple[ProposalNet, RefineNet, OutputNet] | None = None
_LOCK = threading.Lock()


def networks() -> tuple[ProposalNet, RefineNet, OutputNet]:
    """The three networks with the packaged weights, on the CPU (loaded once)."""
    global _NETS
    with _LOCK:
        if _NETS is None:
            folder = detector_weights_folder()
            nets = (ProposalNet(), RefineNet(), OutputNet())
            for net, file in zip(nets, ("pnet", "rnet", "onet"), strict=True):
                try:
                    state = torch.load(folder / f"{file}.pt", map_location="cpu", weights_only=True)
                    net.load_state_dict(state)
                except Exception as error:
                    raise FaceDetectorError(f"cannot read {folder / file}.pt: {error}") from None
                net.eval()
            _NETS = nets
        return _NETS


def _normalise(image: Image.Image) -> torch.Tensor:
    """An RGB image as float (1, 3, H, W) in about [-1, 1], as the nets were trained."""
    tensor = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return (tensor - 127.5) / 128.0


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, by_min: bool = False) -> list:
    """Indices kept by greedy non-maximum suppression, best score first. Overlap is the
    intersection over the union (or over the smaller box's area, `by_min`)."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        width = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(
            boxes[best, 0], boxes[rest, 0]
        )
        height = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(
            boxes[best, 1], boxes[rest, 1]
        )
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        if by_min:
            overlap = inter / np.maximum(np.minimum(areas[best], areas[rest]), 1e-9)
        else:
            overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = list(rest[overlap <= threshold])
    return kept


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    return np.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], axis=1)


def _crops(pixels: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Each box of `pixels` (1, 3, H, W) resized to size x size, each output pixel the mean
    of a grid of bilinear samples over its part of the box (an area average; 0 beyond the
    image), all boxes at once."""
    from torchvision.ops import roi_align

    rois = torch.from_numpy(boxes.astype(np.float32))
    rois = torch.cat([rois.new_zeros(len(rois), 1), rois], dim=1)  # all from image 0
    return roi_align(pixels, rois, output_size=size, sampling_ratio=-1, aligned=True)


def _proposals(pixels: torch.Tensor, pnet: ProposalNet, threshold: float) -> np.ndarray:
    """P-Net over the pyramid: rows of (left, top, right, bottom, score, 4 offsets)."""
    height, width = pixels.shape[2:]
    scale = 12.0 / MIN_FACE_SIZE
    found = []
    while min(height, width) * scale >= 12:
        size = (int(np.ceil(height * scale)), int(np.ceil(width * scale)))
        probability, offsets = pnet(F.interpolate(pixels, size=size, mode="area"))
        ys, xs = np.nonzero(probability[0].numpy() >= threshold)
        if len(ys):
            # window (x, y) of the scaled image covers [2x, 2x + 12) there
            corner = np.stack([xs, ys], axis=1) * 2.0 / scale
            boxes = np.concatenate([corner, corner + 12.0 / scale], axis=1)
            scores = probability[0].numpy()[ys, xs]
            rows = np.column_stack([boxes, scores, offsets[0].numpy()[:, ys, xs].T])
            found.append(rows[nms(boxes, scores, 0.5)])
        scale *= PYRAMID_FACTOR
    return np.concatenate(found) if found else np.zeros((0, 9))


def detect_faces(image: Image.Image) -> list[Face]:
    """The faces in `image`, highest score first; [] when there is none."""
    pnet, rnet, onet = networks()
    image = image.convert("RGB")
    with torch.inference_mode():
        pixels = _normalise(image)
        rows = _proposals(pixels, pnet, THRESHOLDS[0])
        if not len(rows):
            return []
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        boxes = _square(_regress(rows[:, :4], rows[:, 5:9]))

        scores, offsets = (t.numpy() for t in rnet(_crops(pixels, boxes, 24)))
        keep = scores > THRESHOLDS[1]
        boxes, scores, offsets = boxes[keep], scores[keep], offsets[keep]
        if not len(boxes):
            return []
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep]))

        scores, offsets, points = (t.numpy() for t in onet(_crops(pixels, boxes, 48)))
        keep = scores > THRESHOLDS[2]
        boxes, scores, offsets, points = boxes[keep], scores[keep], offsets[keep], points[keep]
    if not len(boxes):
        return []
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    # landmarks are relative to the box O-Net saw, before its own regression
    landmarks = (
        np.stack([points[:, :5], points[:, 5:]], axis=2) * size[:, None] + boxes[:, None, :2]
    )
    boxes = _regress(boxes, offsets)
    keep = nms(boxes, scores, 0.7, by_min=True)
    return [Face(tuple(float(v) for v in boxes[i]), float(scores[i]), landmarks[i]) for i in keep]
