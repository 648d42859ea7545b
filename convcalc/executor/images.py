"""Images in and out of the executor, through Pillow; arrays through .npy.

In: PNG, JPEG, BMP, TIFF, WebP (grayscale, RGB, RGBA, palette, 16-bit) -> float32
(H, W, C) in [0, 1] with the spec's channel count: 1 channel takes the ITU-R 601 luma
(Pillow's L), 3 take RGB (alpha dropped, gray repeated), 4 RGBA. A `.npy` array is taken as
PyTorch lays it out, (C, *spatial) or (1, C, *spatial), for specs whose input is no image.
Out: min-max scaled PNGs (one image for 1 or 3 channels, else a grid of channel maps) and
channels-first `.npy` arrays, each written whole (a temporary file, then os.replace).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from convcalc.files import write_whole

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
ARRAY_SUFFIXES = (".npy",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's convert("L")
# Pillow's decompression-bomb limit (0.25 GiB of 24-bit RGB; 1 GiB as float32 RGB): larger
# images are refused from their header, before any pixel is decoded
MAX_PIXELS = 89_478_485
PIXELS_HINT = "scale the image down first (about 9459x9459 at most)"


class ImageError(Exception):
    """A user-facing problem with an input or output file: one line, with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def list_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder contributes its images and .npy arrays, sorted by name."""
    found = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES)
            if not inside:
                raise ImageError(f"folder {path} holds no image",
                                 f"images end in {', '.join(IMAGE_SUFFIXES)}")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ImageError(f"{path} does not exist", "give image files or folders")
    return found


def load_input(path: Path, channels: int, spatial_rank: int,
               resize: tuple[int, int] | None = None) -> np.ndarray:
    """One sample, channels-last float32 (*spatial, C)."""
    if path.suffix.lower() in ARRAY_SUFFIXES:
        array = _read_array(path, channels, spatial_rank)
    elif spatial_rank != 2:
        raise ImageError(f"{path}: the spec's input has {spatial_rank} spatial axes, an image "
                         f"has 2", "give a .npy array shaped (C, *spatial) instead")
    else:
        array = read_image(path, channels)
    if resize is not None:
        if array.ndim != 3:
            raise ImageError("--resize applies to 2-D inputs only")
        array = resize_image(array, resize)
    return array


def read_image(path: Path, channels: int) -> np.ndarray:
    """(H, W, channels) float32 in [0, 1]."""
    with open_image(path) as image:
        bands = _bands(image)
    return _to_channels(bands, channels, path)


@contextmanager
def open_image(path: Path):
    """A Pillow image, decoded; refused before decoding past MAX_PIXELS (read from the
    header), and with one line for an empty, fake or truncated file. No raw warning."""
    import warnings
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_pixels(path, image.size)
                image.load()
                yield image
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read",
                         "use PNG, JPEG, BMP, TIFF or WebP") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: more than {MAX_PIXELS:,} pixels", PIXELS_HINT) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as err:
        raise ImageError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}",
                         "is the file complete?") from None


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: {width}x{height} is {width * height:,} pixels, more than "
                         f"the {MAX_PIXELS:,} convcalc reads", PIXELS_HINT)


def _bands(image) -> np.ndarray:
    """(H, W, bands) float32 in [0, 1]: 8-bit / 255, 16-bit / 65535, float as is."""
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA"
                              else "RGB")
    elif image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("L" if image.mode == "1" else "RGB")
    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        array = array.astype(np.float32) / 65535.0
    elif image.mode == "I":  # 32-bit integers: 16-bit data in practice
        array = array.astype(np.float32) / (65535.0 if array.max(initial=0) > 255 else 255.0)
    elif image.mode == "F":
        array = array.astype(np.float32)
    else:
        array = array.astype(np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def _to_channels(bands: np.ndarray, channels: int, path: Path) -> np.ndarray:
    count = bands.shape[-1]
    color = bands[..., :3] if count >= 3 else np.repeat(bands[..., :1], 3, axis=-1)
    alpha = bands[..., 3:4] if count == 4 else (bands[..., 1:2] if count == 2 else None)
    if channels == 1:
        gray = bands[..., :1] if count < 3 else color @ np.asarray(LUMA, np.float32)
        return np.ascontiguousarray(gray.reshape(bands.shape[:2] + (1,)), np.float32)
    if channels == 3:
        return np.ascontiguousarray(color, np.float32)
    if channels == 4:
        alpha = np.ones(bands.shape[:2] + (1,), np.float32) if alpha is None else alpha
        return np.ascontiguousarray(np.concatenate([color, alpha], axis=-1), np.float32)
    raise ImageError(f"{path}: the spec's input has {channels} channels; an image gives 1, 3 "
                     f"or 4", "give a .npy array shaped (C, H, W)")


def _read_array(path: Path, channels: int, spatial_rank: int) -> np.ndarray:
    try:  # the header first: a declared shape past the limit is refused unread
        array = np.load(path, allow_pickle=False, mmap_mode="r")
        if not isinstance(array, np.ndarray):  # an .npz archive (numpy.savez) named .npy
            raise ImageError(f"{path} is an .npz archive, not one .npy array",
                             "save one array with numpy.save")
        if array.size > MAX_PIXELS * 4:
            raise ImageError(f"{path}: array of shape {list(array.shape)}, more than "
                             f"{MAX_PIXELS * 4:,} numbers", "give a smaller array")
        array = np.array(array)
    except (OSError, ValueError, EOFError) as err:
        raise ImageError(f"cannot read {path}: {err}", "save it with numpy.save") from None
    if array.ndim == spatial_rank + 2 and array.shape[0] == 1:
        array = array[0]
    if (array.ndim != spatial_rank + 1 or array.shape[0] != channels
            or array.dtype.kind not in "fiub" or 0 in array.shape):
        raise ImageError(f"{path}: array of shape {list(array.shape)} ({array.dtype}); the spec "
                         f"takes ({channels}, {', '.join(['...'] * spatial_rank)}) numbers",
                         "save it channels-first, as PyTorch lays tensors out")
    return np.ascontiguousarray(np.moveaxis(array.astype(np.float32), 0, -1))


def resize_image(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> (size[0], size[1], C), bilinear (Pillow, per channel in float)."""
    from PIL import Image
    height, width = size
    if array.shape[:2] == (height, width):
        return array
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(array[..., c]), "F")
                         .resize((width, height), Image.BILINEAR)) for c in range(array.shape[-1])]
    return np.stack(planes, axis=-1).astype(np.float32)


def normalize(array: np.ndarray, how: str | None) -> np.ndarray:
    """imagenet: (x - mean) / std per channel (1 channel: the means of the three)."""
    if how is None:
        return array
    if how != "imagenet":
        raise ImageError(f"unknown normalization {how!r}", "use --normalize imagenet")
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    if array.shape[-1] == 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    elif array.shape[-1] != 3:
        raise ImageError(f"--normalize imagenet needs 1 or 3 channels; the input has "
                         f"{array.shape[-1]}")
    return (array - mean) / std


# -- writing ---------------------------------------------------------------------------------

def min_max_bytes(array: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min) * 255 as uint8 (a constant array gives 0)."""
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    span = high - low if high > low else 1.0
    return np.clip(np.rint((array - low) / span * 255.0), 0, 255).astype(np.uint8)


def channel_grid(array: np.ndarray, gap: int = 2) -> np.ndarray:
    """(H, W, C) -> one uint8 picture of the C maps, each min-max scaled, in a near-square grid."""
    height, width, count = array.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * (height + gap) - gap, columns * (width + gap) - gap), np.uint8)
    for channel in range(count):  # one tile per channel map: a picture layout, not compute
        top, left = divmod(channel, columns)
        grid[top * (height + gap):top * (height + gap) + height,
             left * (width + gap):left * (width + gap) + width] = min_max_bytes(array[..., channel])
    return grid


def picture(array: np.ndarray) -> np.ndarray | None:
    """What --out shows of one sample (*spatial, C): the image itself for 1 or 3 channels,
    a grid of channel maps otherwise; None for tensors that are not 2-D maps."""
    if array.ndim != 3:
        return None
    if array.shape[-1] == 1:
        return min_max_bytes(array[..., 0])
    if array.shape[-1] == 3:
        return min_max_bytes(array)
    return channel_grid(array)


def save_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image
    write_whole(path, lambda stream: Image.fromarray(pixels).save(stream, format="PNG"))


def save_npy(path: Path, sample: np.ndarray) -> None:
    """One sample saved channels-first, (C, *spatial) or (F,), as PyTorch lays it out."""
    first = np.moveaxis(sample, -1, 0) if sample.ndim >= 2 else sample
    write_whole(path, lambda stream: np.save(stream, np.ascontiguousarray(first)))
