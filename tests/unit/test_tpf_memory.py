"""Reading a big cutout touches only what it needs: peak memory does not grow with the file."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

pytestmark = pytest.mark.process  # the reading runs in a child Python, whose peak memory is its own

ROOT = Path(__file__).resolve().parents[2]


def write_tpf(path: Path, frames: int, side: int) -> None:
    """A TESScut-shaped file: PIXELS with TIME, CADENCENO, FLUX (TDIM), QUALITY; an APERTURE image."""
    flux = np.random.default_rng(1).normal(100, 5, (frames, side, side)).astype(np.float32)
    columns = [
        fits.Column(name="TIME", format="D", array=1325.3 + np.arange(frames) / 48),
        fits.Column(name="CADENCENO", format="J", array=np.zeros(frames, dtype=np.int32)),
        fits.Column(name="FLUX", format=f"{side * side}E", dim=f"({side},{side})", array=flux),
        fits.Column(name="QUALITY", format="J", array=np.zeros(frames, dtype=np.int32)),
    ]
    aperture = fits.ImageHDU(np.ones((side, side), dtype=np.int32), name="APERTURE")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, name="PIXELS"), aperture]).writeto(path)


def test_describe_and_window_do_not_page_in_the_whole_file(tmp_path):
    path = tmp_path / "big.fits"
    write_tpf(path, frames=1500, side=200)  # 240 MB
    size_mb = path.stat().st_size / 2**20
    probe = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from service.tpf import describe_tpf, read_window
        def peak(): return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) // 1024
        before = peak()
        summary = describe_tpf(Path({str(path)!r}), 0.0, 0.0)
        with open({str(path)!r}, 'rb') as handle:
            window = read_window(handle, 0.0, 0.0, 1330.0, 1331.0, 2000)
        assert summary['n_frames'] == 1500 and window.flux.shape == (49, 200, 200)
        print(peak() - before)
        """
    )
    grown_mb = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert size_mb > 200
    assert grown_mb < size_mb / 4, f"reading grew peak memory by {grown_mb} MB for a {size_mb:.0f} MB file"
