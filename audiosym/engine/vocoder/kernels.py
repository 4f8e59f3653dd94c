"""The compiled kernels of the engine's vocoder and of RTPGHI, at module level so numba's
on-disk cache (``cache=True``) holds across processes.

A kernel defined inside a factory function and calling another such kernel (a closure variable)
misses the cache in every new process: numba recompiled it (6-9 s at every engine start) and
wrote one more cache file each time. Module-level kernels call each other as globals, which the
cache handles. Imported by :mod:`audiosym.engine.vocoder.harmonic` and
:mod:`audiosym.engine.vocoder.rtpghi`, which only the engine imports: ``import audiosym`` and
``audiosym --help`` do not import numba. What each kernel computes: the docstrings of
:func:`audiosym.engine.vocoder.harmonic._reader_kernel`,
:func:`audiosym.engine.vocoder.harmonic._synth_kernel` and
:func:`audiosym.engine.vocoder.rtpghi._heap_kernel`, which return them.
"""

from __future__ import annotations

import numba
import numpy as np


# ---------------------------------------------------------------- vocoder: spectrum reader
@numba.njit(cache=True, nogil=True)
def interp(arr, x):  # np.interp on the bin grid, 0 outside
    n = arr.shape[0]
    if x < 0.0 or x > n - 1:
        return 0.0
    i = min(int(np.floor(x)), n - 2)
    fr = x - i
    return arr[i] * (1.0 - fr) + arr[i + 1] * fr


@numba.njit(cache=True, nogil=True)
def comb(f1, h, amps, kernel, p, w_data, w_indices, w_indptr, out):  # feature magnitudes of a comb
    bin_hz, n_fft_bins, oversample, khalf = p[0], int(p[5]), p[7], int(p[8])
    s = np.zeros(n_fft_bins)
    for n in range(h):
        pos = (n + 1) * f1 / bin_hz
        k0 = int(np.floor(pos))
        for k in range(k0 - khalf + 1, k0 + khalf + 1):
            d = abs(k - pos) * oversample
            if d >= khalf * oversample or k < 0 or k >= n_fft_bins:
                continue
            lo = min(int(d), kernel.shape[0] - 2)
            fr = min(d - lo, 1.0)
            s[k] += amps[n] * (kernel[lo] * (1.0 - fr) + kernel[lo + 1] * fr)
    for row in range(out.shape[0]):
        acc = 0.0
        for q in range(w_indptr[row], w_indptr[row + 1]):
            acc += w_data[q] * s[w_indices[q]]
        out[row] = acc


@numba.njit(cache=True, nogil=True)
def read(mag, f0, p, kernel, w_data, w_indices, w_indptr, deltas, band_of_bin, band_norm, amps, noise):
    top_hz, fmin, bps = p[1], p[2], p[3]
    n_harm, n_bands = amps.shape[0], noise.shape[0]
    best, best_score = 0, -1.0
    for di in range(deltas.shape[0]):
        score = 0.0
        for n in range(1, 9):
            score += interp(mag, (f0 + deltas[di] + 12.0 * np.log2(n) - fmin) * bps) / n
        if score > best_score:
            best, best_score = di, score
    m0 = f0 + deltas[best]
    f1 = 440.0 * 2.0 ** ((m0 - 69.0) / 12.0)
    h = 0
    while h < n_harm and (h + 1) * f1 < top_hz:
        h += 1
    unit = np.ones(h)
    model = np.zeros(mag.shape[0])
    comb(f1, h, unit, kernel, p, w_data, w_indices, w_indptr, model)
    amps[:] = 0.0
    for n in range(h):
        b = (m0 + 12.0 * np.log2(n + 1) - fmin) * bps
        amps[n] = interp(mag, b) / max(interp(model, b), 1e-3)
    comb(f1, h, amps, kernel, p, w_data, w_indices, w_indptr, model)
    noise[:] = 0.0
    for k in range(mag.shape[0]):
        band = band_of_bin[k]
        if 0 <= band < n_bands:
            noise[band] += max(mag[k] - model[k], 0.0)
    power = 0.0
    for n in range(h):
        power += 0.5 * amps[n] * amps[n]
    for b in range(n_bands):
        noise[b] *= band_norm[b]
        power += noise[b] * noise[b]
    scale = 1.0 / np.sqrt(power) if power > 0 else 0.0
    for n in range(h):
        amps[n] *= scale
    for b in range(n_bands):
        noise[b] *= scale


@numba.njit(cache=True, nogil=True)
def read_rows(logmag, f0, p, kernel, w_data, w_indices, w_indptr, deltas, band_of_bin, band_norm, amps,
              noise):  # all rows in one call: no per-frame dispatch
    # Features are log(magnitude + eps): the eps floor is no energy. Without removing it, a dark
    # spectrum's floor (e.g. a piano above 2 kHz: 50 dB under its peak, at eps) would be
    # read as broadband harmonics and noise.
    for r in range(logmag.shape[0]):
        top = logmag[r].max()
        mag = np.maximum(np.exp(logmag[r] - top) - p[6] * np.exp(-top), 0.0)
        read(mag, f0[r], p, kernel, w_data, w_indices, w_indptr, deltas, band_of_bin, band_norm, amps[r],
             noise[r])


# ---------------------------------------------------------------- vocoder: synthesis
@numba.njit(cache=True, nogil=True)
def last_nonzero(a, b):  # pragma: no cover - compiled
    for n in range(a.shape[0] - 1, -1, -1):
        if a[n] != 0.0 or b[n] != 0.0:
            return n + 1
    return 0


@numba.njit(cache=True, nogil=True)
def spin_up(phase, zr, zi, kmax):  # pragma: no cover - compiled
    """z_k = exp(i 2 pi (k + 1) phase) for k < kmax, as powers of one exact phasor."""
    angle = 2.0 * np.pi * phase
    cr, ci = np.cos(angle), np.sin(angle)
    pr, pi = cr, ci
    for k in range(kmax):
        zr[k], zi[k] = pr, pi
        pr, pi = pr * cr - pi * ci, pr * ci + pi * cr


@numba.njit(cache=True, nogil=True, fastmath=True)  # the harmonic loops vectorise
def synth(f0_midi, gain, u_off, u_amps, u_noise, u_jump, af, at, nf, nt, phase, ramp_done,
          noise_pos, tables, ramp, limit, sample_rate):  # pragma: no cover - compiled
    n, n_harm, n_bands, length = f0_midi.shape[0], at.shape[0], nf.shape[0], tables.shape[0]
    y = np.zeros(n)
    fade = 0.9 * limit
    top = last_nonzero(af, at)
    has_noise = last_nonzero(nf, nt) > 0
    dd = at - af
    taper, zr, zi = np.zeros(n_harm), np.zeros(n_harm), np.zeros(n_harm)
    rr, ri = np.zeros(n_harm), np.zeros(n_harm)
    ui, last_m, f0, step, hl = 0, -1e300, 0.0, 0.0, 0
    fresh = 0  # samples the phasors may still be rotated before a re-spin from the exact phase
    for t in range(n + 1):
        while ui < u_off.shape[0] and u_off[ui] <= t:
            if u_jump[ui]:
                af[:] = u_amps[ui]
                nf[:] = u_noise[ui]
                ramp_done = ramp
            else:
                w = min(ramp_done / ramp, 1.0)
                for k in range(n_harm):
                    af[k] += w * (at[k] - af[k])
                for k in range(n_bands):
                    nf[k] += w * (nt[k] - nf[k])
                ramp_done = 0
            at[:] = u_amps[ui]
            nt[:] = u_noise[ui]
            for k in range(n_harm):
                dd[k] = at[k] - af[k]
            top = last_nonzero(af, at)
            has_noise = last_nonzero(nf, nt) > 0
            fresh = 0  # harmonics above the old top may not have been rotated
            ui += 1
        if t == n:
            break
        m = f0_midi[t]
        if m != last_m:  # f0 is piecewise constant in the engine: recompute on change only
            f0 = 440.0 * 2.0 ** ((m - 69.0) / 12.0)
            step = f0 / sample_rate
            last_m = m
            hl = 0
            while hl < n_harm and (hl + 1) * f0 < limit:  # the taper is 0 from the limit on
                fh = (hl + 1) * f0
                taper[hl] = (limit - fh) / (0.1 * limit) if fh > fade else 1.0
                hl += 1
            spin_up(step, rr, ri, hl)  # per-harmonic rotation exp(i 2 pi (k + 1) step)
            fresh = 0
        phase += step
        phase -= np.floor(phase)
        wm1 = min((ramp_done + 1) / ramp, 1.0) - 1.0
        if ramp_done < ramp:
            ramp_done += 1
        g = gain[t]
        if g != 0.0:
            acc = 0.0
            kmax = min(top, hl)
            if kmax > 0:
                if fresh > 0:  # advance each phasor by its own rotation (independent lanes)
                    for k in range(kmax):
                        xr = zr[k] * rr[k] - zi[k] * ri[k]
                        zi[k] = zr[k] * ri[k] + zi[k] * rr[k]
                        zr[k] = xr
                    fresh -= 1
                else:  # re-spin from the exact phase every 256 samples (rounding stays ~1e-14)
                    spin_up(phase, zr, zi, kmax)
                    fresh = 255
                for k in range(kmax):
                    acc += (at[k] + wm1 * dd[k]) * taper[k] * zi[k]
            if has_noise:
                for b in range(n_bands):
                    acc += (nt[b] + wm1 * (nt[b] - nf[b])) * tables[noise_pos, b]
            y[t] = acc * g
        else:
            fresh = 0  # the phasors were not rotated through this sample
        noise_pos += 1
        if noise_pos == length:
            noise_pos = 0
    return y, phase, ramp_done, noise_pos


# ---------------------------------------------------------------- RTPGHI: heap integration
@numba.njit(cache=True, nogil=True)
def push(keys, vals, size, key, val):
    i = size
    keys[i], vals[i] = key, val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@numba.njit(cache=True, nogil=True)
def pop(keys, vals, size):
    val = vals[0]
    size -= 1
    keys[0], vals[0] = keys[size], vals[size]
    i = 0
    while True:
        left, right, best = 2 * i + 1, 2 * i + 2, i
        if left < size and keys[left] > keys[best]:
            best = left
        if right < size and keys[right] > keys[best]:
            best = right
        if best == i:
            break
        keys[best], keys[i] = keys[i], keys[best]
        vals[best], vals[i] = vals[i], vals[best]
        i = best
    return val, size


@numba.njit(cache=True, nogil=True)
def integrate(mag_prev, phase_prev, tgrad_prev, mag, tgrad, fgrad, tol, phase):
    n = mag.shape[0]
    thresh = tol * max(mag_prev.max(), mag.max())
    todo = mag > thresh
    remaining = 0
    for m in range(n):
        if todo[m]:
            remaining += 1
    keys, vals = np.empty(3 * n + 1), np.empty(3 * n + 1, np.int64)
    size = 0
    for m in range(n):
        if todo[m] and mag_prev[m] > thresh:
            size = push(keys, vals, size, mag_prev[m], 2 * m)
    while remaining > 0:
        if size == 0:  # nothing known to integrate from: seed the largest remaining bin
            best = -1
            for m in range(n):
                if todo[m] and (best < 0 or mag[m] > mag[best]):
                    best = m
            size = push(keys, vals, size, mag_prev[best], 2 * best)
        v, size = pop(keys, vals, size)
        m = v >> 1
        if v & 1 == 0:
            if todo[m]:
                phase[m] = phase_prev[m] + 0.5 * (tgrad_prev[m] + tgrad[m])
                todo[m] = False
                remaining -= 1
                size = push(keys, vals, size, mag[m], 2 * m + 1)
        else:
            if m + 1 < n and todo[m + 1]:
                phase[m + 1] = phase[m] + 0.5 * (fgrad[m] + fgrad[m + 1])
                todo[m + 1] = False
                remaining -= 1
                size = push(keys, vals, size, mag[m + 1], 2 * m + 3)
            if m > 0 and todo[m - 1]:
                phase[m - 1] = phase[m] - 0.5 * (fgrad[m] + fgrad[m - 1])
                todo[m - 1] = False
                remaining -= 1
                size = push(keys, vals, size, mag[m - 1], 2 * m - 1)
