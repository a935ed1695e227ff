#!/usr/bin/python3
# Golden reference for src/embed/image-preprocess.ts: writes small test images and what torchvision's
# Resize(256) + CenterCrop(224) + ToTensor() + Normalize() makes of them on PIL, for the parity test.
#
# Run with Debian's interpreter (needs python3-pil, python3-numpy, python3-torch, python3-torchvision):
#   /usr/bin/python3 scripts/reference/image_reference.py golden            # test/golden/images/
#   /usr/bin/python3 scripts/reference/image_reference.py crops DIR OUTDIR  # real photos, for measuring only
#
# The reference crop is stored as the 224x224 uint8 RGB image that ToTensor() receives, as lossless WebP:
# the float tensor is exactly (u8 / 255 - mean) / std, so this is a lossless, ~20x smaller encoding of it. Each entry in
# reference.json also carries stats of the float tensor itself so the test can check that decoding.

import base64
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from torchvision import transforms

RESIZE, CROP = 256, 224
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

TRANSFORM = transforms.Compose([
    transforms.Resize(RESIZE),  # bilinear, PIL antialiasing
    transforms.CenterCrop(CROP),
])
TO_TENSOR = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def load_rgb(path):
    """What the training-time loader does: EXIF orientation, alpha flattened onto white, RGB."""
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    if im.mode in ('RGBA', 'LA', 'PA') or (im.mode == 'P' and 'transparency' in im.info):
        im = im.convert('RGBA')
        white = Image.new('RGBA', im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return im.convert('RGB')


def reference(path):
    """(crop as HxWx3 uint8, float tensor 3xHxW, geometry) for one file."""
    im = load_rgb(path)
    w, h = im.size
    resized = transforms.Resize(RESIZE)(im)
    rw, rh = resized.size
    crop = transforms.CenterCrop(CROP)(resized)
    tensor = TO_TENSOR(crop)
    u8 = np.asarray(crop, dtype=np.uint8)
    # The PNG-of-the-crop encoding must reproduce the tensor exactly.
    rebuilt = (torch.from_numpy(u8).permute(2, 0, 1).float() / 255 - torch.tensor(MEAN)[:, None, None]) \
        / torch.tensor(STD)[:, None, None]
    assert float((rebuilt - tensor).abs().max()) < 1e-6, path
    geometry = {
        'oriented': [w, h],
        'resized': [rw, rh],
        'cropTop': int(round((rh - CROP) / 2.0)),
        'cropLeft': int(round((rw - CROP) / 2.0)),
    }
    return u8, tensor, geometry


def tensor_stats(t):
    t64 = t.double()
    return {
        'channelMean': [round(float(t64[c].mean()), 6) for c in range(3)],
        'min': round(float(t64.min()), 6),
        'max': round(float(t64.max()), 6),
        'absSum': round(float(t64.abs().sum()), 3),
    }


# ---------------------------------------------------------------- synthetic test images

def scene(w, h, seed):
    """A product-photo-like RGB scene: flat light background, hard-edged flat shapes, one shaded object,
    thin dark lines. Mostly flat so the images and their reference crops compress to a few KiB."""
    rng = np.random.RandomState(seed)
    img = Image.new('RGB', (w, h), (244, 243, 240))
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.randint(0, w - 20), rng.randint(0, h - 20)
        x1, y1 = x0 + rng.randint(10, w // 2), y0 + rng.randint(10, h // 2)
        colour = tuple(int(v) for v in rng.randint(0, 256, 3))
        if rng.rand() < 0.5:
            d.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            d.rectangle([x0, y0, x1, y1], fill=colour)
    # A shaded disc: smooth gradients exercise the resampler between the hard edges.
    cx, cy, r = w * 0.6, h * 0.55, min(w, h) * 0.22
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    dist = np.hypot(x - cx, y - cy) / r
    shade = np.clip(1 - dist, 0, 1)[..., None]
    arr = np.asarray(img, dtype=np.float64)
    colour = np.array([60 + 40 * (seed % 4), 120, 200 - 30 * (seed % 3)], dtype=np.float64)
    arr = np.where(dist[..., None] < 1, colour * (0.45 + 0.55 * shade) + 40 * shade ** 4, arr)
    img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)))
    d = ImageDraw.Draw(img)
    for i in range(5):
        yy = int(h * (i + 1) / 7)
        d.line([(w // 10, yy), (w - w // 10, yy + rng.randint(-5, 6))], fill=(25, 25, 25), width=1 + i % 3)
    return img.filter(ImageFilter.GaussianBlur(0.5))


def save_jpeg(img, path, **kw):
    img.save(path, 'JPEG', quality=85, **kw)


def write_png16(path, arr16):
    """16-bit RGB PNG (Pillow cannot write one): plain chunks, filter 0."""
    h, w, _ = arr16.shape
    raw = b''.join(b'\x00' + arr16[r].astype('>u2').tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
        f.write(chunk(b'IEND', b''))


def make_images(out):
    os.makedirs(out, exist_ok=True)
    made = []

    def add(name, note):
        made.append((name, note))

    save_jpeg(scene(301, 217, 1), os.path.join(out, 'landscape-301x217.jpg'))
    add('landscape-301x217.jpg', 'JPEG landscape, odd size, crop left = round(65.5) = 66')
    save_jpeg(scene(640, 480, 2), os.path.join(out, 'photo-640x480.jpg'))
    add('photo-640x480.jpg', 'JPEG 4:3 downscale by 1.875')
    save_jpeg(scene(190, 400, 3), os.path.join(out, 'portrait-190x400.jpg'))
    add('portrait-190x400.jpg', 'JPEG portrait, short side 190 < 256 (upscale)')
    save_jpeg(scene(120, 90, 4), os.path.join(out, 'small-120x90.jpg'))
    add('small-120x90.jpg', 'JPEG smaller than the crop (upscale x2.84)')

    # JPEG with EXIF orientation 6: stored 320x240 with red on the left, blue on the right;
    # displayed (rotated 90 degrees clockwise) it is 240x320, red on top, blue below.
    im = scene(320, 240, 5)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 159, 239], fill=(220, 30, 30))
    d.rectangle([160, 0, 319, 239], fill=(30, 30, 220))
    d.rectangle([20, 20, 60, 60], fill=(250, 250, 40))  # stored top-left -> displayed top-right
    exif = Image.Exif()
    exif[0x0112] = 6
    save_jpeg(im, os.path.join(out, 'exif6-320x240.jpg'), exif=exif.tobytes())
    add('exif6-320x240.jpg', 'JPEG with EXIF Orientation=6 (rotate 90 CW)')

    # RGBA: left half opaque scene, right half transparent (with junk colour under alpha 0), a ramp between.
    rgb = np.asarray(scene(300, 260, 6), dtype=np.uint8)
    alpha = np.zeros((260, 300), dtype=np.uint8)
    alpha[:, :120] = 255
    alpha[:, 120:180] = np.linspace(255, 0, 60).astype(np.uint8)[None, :]
    rgba = np.dstack([rgb, alpha])
    rgba[:, 200:, :3] = (0, 200, 0)
    Image.fromarray(rgba, 'RGBA').save(os.path.join(out, 'alpha-300x260.png'), optimize=True)
    add('alpha-300x260.png', 'PNG RGBA, transparent right half must become white')

    scene(257, 311, 7).convert('L').save(os.path.join(out, 'grey-257x311.png'), optimize=True)
    add('grey-257x311.png', 'PNG 8-bit greyscale')

    arr = np.asarray(scene(280, 240, 8), dtype=np.uint16)
    arr16 = arr * 256 + 200  # low byte 200: PIL keeps the high byte, a rounding converter would add 1
    write_png16(os.path.join(out, 'rgb16-280x240.png'), arr16)
    add('rgb16-280x240.png', 'PNG 16-bit RGB')

    scene(333, 250, 9).save(os.path.join(out, 'webp-333x250.webp'), 'WEBP', quality=80, method=6)
    add('webp-333x250.webp', 'lossy WebP')

    frames = [scene(260, 270, 10 + i).quantize(64, dither=Image.Dither.NONE) for i in range(2)]
    frames[0].save(os.path.join(out, 'anim-260x270.gif'), save_all=True, append_images=frames[1:],
                   duration=200, loop=0, optimize=False)
    add('anim-260x270.gif', 'animated GIF, 2 frames: the first is used')

    scene(300, 230, 12).save(os.path.join(out, 'tiff-300x230.tif'), 'TIFF', compression='tiff_adobe_deflate')
    add('tiff-300x230.tif', 'TIFF, deflate')

    scene(260, 300, 13).convert('CMYK').save(os.path.join(out, 'cmyk-260x300.jpg'), 'JPEG', quality=85)
    add('cmyk-260x300.jpg', 'CMYK JPEG (PIL converts naively)')

    yy, xx = np.mgrid[0:1500, 0:60]
    tall = np.stack([xx * 4, (yy * 7) % 256, ((yy // 3) * 11) % 256], axis=-1).astype(np.uint8)  # rows differ
    Image.fromarray(tall).save(os.path.join(out, 'tall-60x1500.png'), optimize=True)
    add('tall-60x1500.png', 'PNG 1:25, upscaled x4.27 to 256x6400; only a 60x55 band is read')

    # Crop-offset marker: 256x301 needs no resize; crop top = round(38.5) = 38 (half to even), left = 16.
    m = np.full((301, 256, 3), 128, dtype=np.uint8)
    m[38, 16] = (255, 0, 0)          # first pixel of the crop
    m[37, 16] = (0, 255, 0)          # just above: must be cut
    m[38 + 223, 16 + 223] = (0, 0, 255)  # last pixel of the crop
    m[38 + 224, 16 + 223] = (0, 255, 0)  # just below: must be cut
    Image.fromarray(m).save(os.path.join(out, 'marker-256x301.png'), optimize=True)
    add('marker-256x301.png', 'no resize; crop top 38 (round half to even), left 16')
    return made


def golden(root):
    out = os.path.join(root, 'test', 'golden', 'images')
    ref_dir = os.path.join(out, 'ref')
    os.makedirs(ref_dir, exist_ok=True)
    made = make_images(out)
    entries = []
    for name, note in made:
        u8, tensor, geometry = reference(os.path.join(out, name))
        ref_name = os.path.splitext(name)[0] + '.webp'
        Image.fromarray(u8).save(os.path.join(ref_dir, ref_name), 'WEBP', lossless=True, quality=100, method=6)
        with Image.open(os.path.join(ref_dir, ref_name)) as check:
            assert np.array_equal(np.asarray(check.convert('RGB')), u8), ref_name
        with Image.open(os.path.join(out, name)) as im:
            fmt, mode = im.format, im.mode
        entries.append({'file': name, 'ref': 'ref/' + ref_name, 'format': fmt, 'pilMode': mode, 'note': note,
                        **geometry, 'tensor': tensor_stats(tensor)})
    # ToTensor + Normalize of every 8-bit level, so the test can check its float32 arithmetic against torch's.
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lut = TO_TENSOR(Image.fromarray(np.stack([levels] * 3, axis=-1)))
    manifest = {
        'generator': 'scripts/reference/image_reference.py',
        'versions': {'pillow': Image.__version__, 'torch': torch.__version__,
                     'torchvision': torchvision.__version__, 'numpy': np.__version__},
        'transform': {'resize': RESIZE, 'crop': CROP, 'interpolation': 'bilinear (PIL, antialiased)',
                      'mean': MEAN, 'std': STD,
                      'loader': 'Image.open -> ImageOps.exif_transpose -> alpha onto white -> convert RGB'},
        'encoding': 'ref/*.webp (lossless) is the 224x224 uint8 RGB crop; tensor = (u8/255 - mean)/std, CHW',
        'levelsTensor': 'float32 LE base64 of ToTensor+Normalize of levels 0..255, shape 3x256 (channel, level)',
        'levels': base64.b64encode(lut.numpy().astype('<f4').tobytes()).decode('ascii'),
        'images': entries,
    }
    with open(os.path.join(out, 'reference.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f'{len(entries)} images, {total / 1024:.0f} KiB in {out}')


def crops(src, dst):
    """Reference crops of every image in src (not committed: for measuring parity on real photos)."""
    os.makedirs(dst, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(src)):
        if not name.lower().endswith(('.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff')):
            continue
        u8, _, _ = reference(os.path.join(src, name))
        Image.fromarray(u8).save(os.path.join(dst, os.path.splitext(name)[0] + '.png'))
        n += 1
    print(f'{n} reference crops in {dst}')


if __name__ == '__main__':
    Image.MAX_IMAGE_PIXELS = None  # the originals go up to 22 MP; the reference must not refuse them
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'golden'
    if cmd == 'golden':
        golden(os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))
    elif cmd == 'crops' and len(sys.argv) == 4:
        crops(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__ or 'usage: image_reference.py golden | crops SRC DST')
