#!/usr/bin/python3
"""frames.py - the Python side of the frames demo: camera frames as numpy arrays, no copy.

    frames.py consume ADDR --seconds S          read frames for S seconds as numpy views of
                                                the shared memory, print their mean brightness
                                                each second, then frames/s, GB/s and latency
    frames.py produce ADDR --seconds S [--fps F]
                                                create the channel ADDR, wait for a reader
                                                (10 s at most), write frames in place for S
                                                seconds (F per second; 0, the default, as
                                                fast as it can), then remove it

It speaks with examples/frames.c, which explains the design: a *latest* channel (the camera
never waits; a reader gets the newest frame and learns how many it skipped), whose type is
the FRAME dtype below, stored in the channel so that C and Python agree on the layout. A
frame is one grey level that changes over time; t_ns is CLOCK_MONOTONIC (time.monotonic_ns())
when the frame was published, so latency is delivery only. The stream ends with a frame whose
seq is END_SEQ. Ctrl-C or SIGTERM ends either side cleanly.
"""
import argparse
import signal
import sys
import time

import numpy as np

import shmlink

FRAME = np.dtype([("seq", "<u8"), ("t_ns", "<u8"), ("pixels", "u1", (480, 640, 3))])
END_SEQ = 2**64 - 1
BUFFERS = 8  # frame buffers in the channel: up to BUFFERS - 2 readers
READER_WAIT = 10.0  # seconds the producer waits for a first reader
OPEN_WAIT = 10.0  # seconds a consumer waits for the channel to appear
IDLE = 2.0  # ... and then for the next frame
POLL = 0.1  # each wait is this short (Ctrl-C is seen at once anyway)
PERIOD_NS = 4 * 10**9  # of the brightness wave
LEVEL_LO, LEVEL_HI = 16, 240


stopping = False  # set by SIGTERM: end the run cleanly, as Ctrl-C does


def on_sigterm(signum, frame):
    # A flag, not an exception: an exception raised inside numpy's parsing of a buffer's
    # format comes out as a ValueError, not as the KeyboardInterrupt it was.
    global stopping
    stopping = True


def level_at(t_ns):
    """The grey level t_ns into the stream: the triangle wave frames.c draws."""
    phase, half = t_ns % PERIOD_NS, PERIOD_NS // 2
    up = phase if phase < half else PERIOD_NS - phase
    return LEVEL_LO + (LEVEL_HI - LEVEL_LO) * up // half


def gbps(frames, ns):
    return frames * FRAME.itemsize / ns if ns > 0 else 0.0


def stream(ch, seconds, fps):
    """Write frames for `seconds` (until Ctrl-C); return how many, and the time taken."""
    start = time.monotonic_ns()
    end, period = start + int(seconds * 1e9), int(1e9 / fps) if fps else 0
    next_ns, seq = start, 0
    try:
        while time.monotonic_ns() < end and not stopping:
            # Write the frame in place: the array is a view of the claimed buffer, published
            # at the end of the block, which no view of it may outlive (hence the del).
            with ch.claim_array() as f:
                f["pixels"].fill(level_at(time.monotonic_ns() - start))
                f["seq"] = seq
                f["t_ns"] = time.monotonic_ns()  # last, so that latency is delivery only
                del f
            seq += 1
            if period:
                next_ns += period
                time.sleep(max(0, next_ns - time.monotonic_ns()) / 1e9)
    except KeyboardInterrupt:
        pass
    return seq, time.monotonic_ns() - start


def produce(addr, seconds, fps):
    ch = shmlink.Latest(addr, create=True, dtype=FRAME, role="writer",
                        capacity=BUFFERS * (FRAME.itemsize + 4096))
    try:
        # The camera starts when someone watches (or after READER_WAIT): no frame of the run
        # is written for nobody, however long a reader takes to start.
        give_up = time.monotonic() + READER_WAIT
        while ch.stats()["attached"] < 2 and time.monotonic() < give_up and not stopping:
            time.sleep(0.01)
        seq, took = stream(ch, seconds, fps)
        end_frame = np.zeros((), FRAME)
        end_frame["seq"], end_frame["t_ns"] = END_SEQ, time.monotonic_ns()
        ch.send_array(end_frame)  # the newest value, so no reader can skip it
    finally:
        ch.close()
        # Readers keep their mapping: removing the name only stops new ones from opening.
        try:
            shmlink.unlink(addr)
        except FileNotFoundError:
            pass
    print(f"produced {seq} frames in {took / 1e9:.2f} s: {seq * 1e9 / took:.0f} frames/s, "
          f"{gbps(seq, took):.2f} GB/s written", flush=True)
    return 0


def open_frames(addr):
    """Open ADDR as a reader, waiting for the producer to create it, and check its type."""
    give_up = time.monotonic() + OPEN_WAIT
    while True:
        try:
            ch = shmlink.Latest(addr, role="reader")
            break
        except FileNotFoundError as e:
            if time.monotonic() > give_up or stopping:
                sys.exit(f"frames.py: {e}")
            time.sleep(0.01)
    if ch.dtype != FRAME or ch.shape not in ((), None):
        ch.close()
        sys.exit(f"frames.py: {addr} carries {ch.dtype} {ch.shape}, not frames ({FRAME})")
    print(f"reading {addr}: {FRAME.itemsize} bytes a frame as numpy "
          f"{FRAME['pixels'].base}{FRAME['pixels'].shape} + seq, t_ns", flush=True)
    return ch


def consume(addr, seconds):
    ch = open_frames(addr)
    frames = skipped = errors = tick_frames = 0
    last_seq, lat = None, []
    start = end = tick = 0
    last_frame = time.monotonic_ns()
    why = "time is up"
    try:
        while True:
            try:
                # A read-only numpy view of the frame in the shared memory, no copy, pinned
                # until the end of the block: every view of it must be gone by then.
                with ch.recv_view_array(timeout=POLL) as frame:
                    now = time.monotonic_ns()
                    seq, t_ns = int(frame["seq"]), int(frame["t_ns"])
                    pixels = frame["pixels"]  # (480, 640, 3) uint8
                    total = int(np.add.reduce(pixels.reshape(-1), dtype=np.uint32))
                    torn = total != int(pixels[0, 0, 0]) * pixels.size
                    del pixels, frame
            except TimeoutError:
                now = time.monotonic_ns()
                if stopping:
                    why = "interrupted"
                    break
                if now - last_frame > (IDLE if frames else OPEN_WAIT) * 1e9:
                    why = "no frame came"
                    break
                if frames and now >= end:
                    break
                continue
            last_frame = now
            if seq == END_SEQ:
                why = "the stream ended"
                break
            if frames == 0:
                start = tick = now
                end = now + int(seconds * 1e9)
            elif seq <= last_seq or seq - last_seq - 1 != ch.gap:
                print(f"frames.py: frame {seq} after {last_seq} with a gap of {ch.gap}",
                      file=sys.stderr)
                errors += 1
            else:
                skipped += ch.gap
            lat.append(now - t_ns)
            if torn:
                print(f"frames.py: frame {seq} is torn", file=sys.stderr)
                errors += 1
            last_seq = seq
            frames += 1
            tick_frames += 1
            if now - tick >= 1e9:
                print(f"  {(now - start) / 1e9:4.1f} s  {tick_frames * 1e9 / (now - tick):6.0f}"
                      f" frames/s  {gbps(tick_frames, now - tick):5.2f} GB/s  mean brightness"
                      f" {total / (480 * 640 * 3):5.1f}", flush=True)
                tick, tick_frames = now, 0
            if now >= end or stopping:
                why = "interrupted" if stopping else why
                break
    except KeyboardInterrupt:
        why = "interrupted"
    took = time.monotonic_ns() - start
    ch.close()
    if frames == 0:
        print(f"frames.py: no frame from {addr} ({why})", file=sys.stderr)
        return 1
    p50, p99 = np.percentile(np.array(lat), [50, 99]) / 1e3
    print(f"consumed {frames} frames in {took / 1e9:.2f} s ({why}): {frames * 1e9 / took:.0f}"
          f" frames/s, {gbps(frames, took):.2f} GB/s, latency p50 {p50:.1f} us p99 {p99:.1f} us,"
          f" {skipped} skipped, {errors} errors", flush=True)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description="Camera frames through a shmlink channel.")
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("addr")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--fps", type=float, default=0.0, help="produce: frames per second (0: all)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if args.mode == "produce":
            return produce(args.addr, args.seconds, args.fps)
        return consume(args.addr, args.seconds)
    except KeyboardInterrupt:  # before a stream started: nothing to report
        return 130


if __name__ == "__main__":
    sys.exit(main())
