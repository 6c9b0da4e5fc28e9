"""PyTorch CPU BatchNorm on the benchmark's cases at 1, 2, 4, ... threads: the peer figures
for thread-scaling runs on machines that have PyTorch but no Node.js (see scaling.cpp).
Run with MALLOC_MMAP_THRESHOLD_=4294967296 so outputs reuse already-faulted heap pages
(torch allocates outputs per call). Prints a Markdown table of median ms."""
import os
import statistics
import time

import torch

CASES = [("256x1024-nc", (256, 1024), False), ("4096x1024-nc", (4096, 1024), False)]
for dims in [(32, 64, 56, 56), (64, 256, 14, 14), (128, 512, 7, 7), (16, 32, 112, 112), (8, 64, 224, 224)]:
    name = "x".join(map(str, dims))
    CASES += [(name + "-nchw", dims, False), (name + "-nhwc", dims, True)]


def median_ms(fn):
    fn()
    times, total = [], 0.0
    while len(times) < 5 or (total < 0.3 and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        total += times[-1]
    return statistics.median(times) * 1e3


def main():
    cores = os.cpu_count()
    threads = sorted({1 << i for i in range(cores.bit_length()) if 1 << i < cores} | {cores})
    print(f"torch {torch.__version__}, {cores} cores, MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}\n")
    print("| case | op |" + "".join(f" {t}T |" for t in threads))
    print("|---|---|" + "---|" * len(threads))
    for name, dims, channels_last in CASES:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(dims, generator=g) * 2 + 0.5
        dy = torch.randn(dims, generator=g)
        if channels_last:
            x, dy = x.to(memory_format=torch.channels_last), dy.to(memory_format=torch.channels_last)
        c = dims[1]
        w, b = torch.full((c,), 1.1), torch.full((c,), 0.1)
        rm, rv = torch.full((c,), 0.5), torch.full((c,), 2.0)
        _, sm, si = torch.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5)
        ops = {
            "forwardTrain": lambda: torch.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5),
            "forwardInference": lambda: torch.nn.functional.batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5),
            "backward": lambda: torch.ops.aten.native_batch_norm_backward(dy, x, w, None, None, sm, si, True, 1e-5, [True, True, True]),
        }
        with torch.no_grad():
            for op, fn in ops.items():
                cells = []
                for t in threads:
                    torch.set_num_threads(t)
                    cells.append(f"{median_ms(fn):.3g}")
                print(f"| {name} | {op} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
